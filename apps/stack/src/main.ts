// `npm start`: brings the whole stack up on this machine and keeps it up until SIGINT/SIGTERM.
import { loadStackConfig } from './env.js';
import { StackError, startStack } from './stack.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

try {
  const stack = await startStack(loadStackConfig(), log);
  let stopping = false;
  const shutdown = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    log(`berth: ${why}; stopping`);
    await stack.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  void stack.exited.then((why) => shutdown(why, 1));
} catch (err) {
  log(err instanceof StackError ? err.message : `berth: could not start: ${String(err)}`);
  process.exit(1);
}
