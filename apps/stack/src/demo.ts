// `npm run demo`, berth's main job end to end: bring the stack up, submit the BERT demo (tiny BERT pretrained on the
// demo corpus, then fine-tuned on the demo QA set), follow its log live, print F1 and where the model is, stop.
import { parseEvents, type LogBatch } from '@berth/contracts';
import { join, resolve } from 'node:path';
import { loadStackConfig } from './env.js';
import { StackError, startStack, type Stack } from './stack.js';
import { TrainingLog } from '@berth/telemetry/training-log';

const log = (line: string) => process.stderr.write(`${line}\n`);

const demoJob = {
  manifest: 'custom',
  params: { image: 'berth/bert-cpu:dev', command: ['python3', '-m', 'berth_bert', 'demo'] },
  labels: { purpose: 'demo' },
};

const auth = (stack: Stack) => ({ authorization: `Bearer ${stack.adminToken}` });

interface Summary {
  F1?: number;
  exact_match?: number;
}

async function run(stack: Stack, dataDir: string): Promise<number> {
  const res = await fetch(`${stack.apiUrl}/v1/jobs`, {
    method: 'POST',
    headers: { ...auth(stack), 'content-type': 'application/json' },
    body: JSON.stringify(demoJob),
  });
  const job = (await res.json()) as { id: string; error?: { message: string } };
  if (res.status !== 201) throw new StackError(`berth: the demo job was refused: ${job.error?.message ?? res.status}`);
  log(`berth: submitted ${job.id}; following its log (pretraining, then SQuAD fine-tuning: a few minutes on a CPU)`);

  let summary: Summary = {};
  // Shown as berth logs shows it: one line a step, results as a block.
  const reading = new TrainingLog();
  const state = await followLog(stack, `/v1/jobs/${job.id}/logs?follow=true`, (text) => {
    const shown = reading.line(text);
    if (shown !== null) process.stdout.write(`${shown}\n`);
    if (text.startsWith('DLLL ')) {
      const record = JSON.parse(text.slice(5)) as { step?: unknown; data?: Summary };
      if (Array.isArray(record.step) && record.step.length === 0 && record.data?.F1 !== undefined)
        summary = record.data;
    }
  });
  const final = (await (await fetch(`${stack.apiUrl}/v1/jobs/${job.id}`, { headers: auth(stack) })).json()) as {
    state: string;
    message?: string;
  };
  if (state !== 'succeeded') {
    log(`berth: ${job.id} ended ${final.state}${final.message ? `: ${final.message}` : ''}`);
    return 1;
  }
  const results = join(dataDir, 'results', job.id, 'a1');
  log('');
  log(`berth: ${job.id} succeeded — dev F1 ${summary.F1?.toFixed(1)}, exact match ${summary.exact_match?.toFixed(1)}`);
  log(`berth: fine-tuned model (Hugging Face layout): ${join(results, 'squad', 'model')}`);
  log(
    `berth: checkpoints ${join(results, 'squad', 'checkpoints')}, predictions ${join(results, 'squad', 'predictions.json')}`,
  );
  log(`berth: job record ${stack.apiUrl}/v1/jobs/${job.id}, log ${stack.apiUrl}/v1/jobs/${job.id}/logs`);
  return 0;
}

/** Follows the SSE log to its end event, resuming with Last-Event-ID if the connection drops. Returns the final state. */
async function followLog(stack: Stack, path: string, onLine: (text: string) => void): Promise<string> {
  let lastId: string | undefined;
  for (;;) {
    try {
      const res = await fetch(`${stack.apiUrl}${path}`, {
        headers: { ...auth(stack), ...(lastId ? { 'last-event-id': lastId } : {}) },
      });
      for await (const ev of parseEvents(res.body as unknown as AsyncIterable<Uint8Array>)) {
        lastId = ev.id ?? lastId;
        if (ev.event === 'end') return (JSON.parse(ev.data) as { state: string }).state;
        for (const text of (JSON.parse(ev.data) as LogBatch).lines) onLine(text);
      }
    } catch {
      // Dropped connection: reconnect below and carry on from lastId.
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

let stack: Stack | undefined;
let code = 1;
try {
  const config = loadStackConfig({ LOG_LEVEL: 'warn' });
  stack = await startStack(config, log);
  process.on('SIGINT', () => void stack?.stop().then(() => process.exit(130)));
  code = await run(stack, resolve(config.BERTH_DATA_DIR));
} catch (err) {
  log(err instanceof StackError ? err.message : `berth: demo failed: ${String(err)}`);
} finally {
  await stack?.stop();
}
process.exit(code);
