// The log at scale: a million lines from one container arrive complete and in order through SSE, and a follower
// whose API process restarts mid-stream resumes on the new one with no gap and no duplicate.
import { buildApp } from '../apps/api/src/app.js';
import {
  fixtureJob,
  followToEnd,
  logTexts,
  readEvents,
  startTestStack,
  submit,
  testApiConfig,
  waitForEnd,
  type TestStack,
  testClient,
} from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('scale', { caps: { logLines: 2_000_000, metricPoints: 10_000 } });
});
afterAll(async () => stack.close());

test('1,000,000 lines from one container arrive through SSE complete and in order', async () => {
  const { body } = await submit(stack.alice, fixtureJob(['seq', '1', '1000000']));
  // A client that reconnects with Last-Event-ID when its stream drops, as EventSource does; none is expected.
  const { events, reconnects } = await followToEnd(stack.alice, `/v1/jobs/${body.id}/logs?follow=true`);
  if (reconnects > 0) console.log(`the follow reconnected ${reconnects} time(s)`);
  const texts = logTexts(events);
  expect(texts.length).toBe(1_000_000);
  let inOrder = true;
  for (let i = 0; i < texts.length; i++) if (texts[i] !== String(i + 1)) inOrder = false;
  expect(inOrder).toBe(true);
  expect(events.at(-1)).toMatchObject({ event: 'end' });
}, 240_000);

test('the API restarting in the middle of a follow: the client resumes on the new one, no gap, no duplicate', async () => {
  const { body } = await submit(
    stack.alice,
    fixtureJob([
      'sh',
      '-c',
      'i=1; while [ $i -le 3000 ]; do echo "line $i"; i=$((i+1)); if [ $((i % 300)) -eq 0 ]; then sleep 0.2; fi; done',
    ]),
  );
  const second = await buildApp(testApiConfig(stack.prefix));
  // A first API process serves the beginning of the follow, then goes away while the job still prints.
  const first = await buildApp(testApiConfig(stack.prefix));
  await first.listen({ port: 0, host: '127.0.0.1' });
  const firstUrl = `http://127.0.0.1:${(first.server.address() as { port: number }).port}`;
  const reading = readEvents(
    testClient(firstUrl, stack.alice.token, stack.alice.user),
    `/v1/jobs/${body.id}/logs?follow=true`,
  );
  for (;;) {
    const text = await (await stack.alice.fetch(`/v1/jobs/${body.id}/logs?tail=1`)).text();
    if (Number(text.trim().split(' ')[1] ?? 0) >= 700) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await first.close();
  const before = await reading;
  expect(before.at(-1)?.event).not.toBe('end');
  const lastId = before.filter((e) => e.id).at(-1)!.id!;

  await second.listen({ port: 0, host: '127.0.0.1' });
  const secondUrl = `http://127.0.0.1:${(second.server.address() as { port: number }).port}`;
  try {
    const after = await readEvents(
      testClient(secondUrl, stack.alice.token, stack.alice.user),
      `/v1/jobs/${body.id}/logs?follow=true`,
      { 'last-event-id': lastId },
    );
    const all = [...before, ...after].filter((e) => e.event === 'log');
    expect(logTexts(all)).toEqual(Array.from({ length: 3000 }, (_, i) => `line ${i + 1}`));
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    expect(after.at(-1)).toMatchObject({ event: 'end' });
    expect((await waitForEnd(stack.alice, body.id)).state).toBe('succeeded');
  } finally {
    await second.close();
  }
}, 60_000);
