// A real worker process for a test stack (apps/worker/dist/main.js), for tests that kill and restart one.
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { testRedisUrl } from './env.js';
import type { TestStack } from './stack.js';

export function spawnWorker(stack: TestStack, workerId: string, env: Record<string, string> = {}): ChildProcess {
  const prefix = stack.prefix;
  return spawn(process.execPath, [resolve(__dirname, '../../apps/worker/dist/main.js')], {
    env: {
      ...process.env,
      REDIS_URL: testRedisUrl(),
      BERTH_PREFIX: prefix,
      BERTH_API_URL: stack.url,
      BERTH_API_TOKEN: stack.workerApi.token,
      BERTH_WORKER_ID: workerId,
      BERTH_GPUS: '0',
      BERTH_HEARTBEAT_MS: '200',
      BERTH_WORKER_METRICS_PORT: '0',
      BERTH_DATA_DIR: `/tmp/berth-test-data/${prefix}`,
      LOG_LEVEL: 'silent',
      ...env,
    },
    stdio: 'ignore',
  });
}

/** SIGKILLs a worker process and waits until it is gone. */
export async function kill(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
}

/** Resolves when the process has exited (killed or not), with its signal. */
export function exited(child: ChildProcess): Promise<NodeJS.Signals | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((r) => child.once('exit', (_code, signal) => r(signal)));
}
