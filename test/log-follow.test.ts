// SSE follow: every line of a 10,000-line container in order, and a resume with Last-Event-ID that loses and repeats nothing.
import {
  fixtureJob,
  logTexts,
  readEvents,
  startTestStack,
  submit,
  waitForEnd,
  type TestStack,
} from './support/stack.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('follow');
});
afterAll(async () => stack.close());

const lines = 10_000;
const script = `i=1; while [ $i -le ${lines} ]; do echo "line $i"; i=$((i+1)); done`;

test('a live follow receives all 10,000 lines in order, then the end event', async () => {
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', `sleep 1; ${script}`]));
  const events = await readEvents(stack.alice, `/v1/jobs/${body.id}/logs?follow=true`, {});
  expect(logTexts(events)).toEqual(Array.from({ length: lines }, (_, i) => `line ${i + 1}`));
  expect(events.at(-1)).toMatchObject({ event: 'end', data: JSON.stringify({ state: 'succeeded' }) });
});

test('disconnecting midway and reconnecting with Last-Event-ID gives the rest, no gap, no duplicate', async () => {
  const { body } = await submit(stack.alice, fixtureJob(['sh', '-c', script]));
  const url = `/v1/jobs/${body.id}/logs?follow=true`;
  const first = await readEvents(stack.alice, url, {}, { after: 3_333 });
  const lastId = first.at(-1)!.id!;
  await waitForEnd(stack.alice, body.id);
  const rest = await readEvents(stack.alice, url, { 'last-event-id': lastId });
  // The first read stopped mid-log (3,333 lines or more, in whole batches).
  expect(logTexts(first).length).toBeGreaterThanOrEqual(3_333);
  expect(logTexts(first).length).toBeLessThan(lines);
  const all = [...first, ...rest].filter((e) => e.event === 'log');
  expect(logTexts(all)).toEqual(Array.from({ length: lines }, (_, i) => `line ${i + 1}`));
  const ids = all.map((e) => e.id);
  expect(new Set(ids).size).toBe(all.length);
  expect(rest.at(-1)?.event).toBe('end');
});

test('an unknown job answers 404 with a code, also for logs', async () => {
  const res = await stack.alice.fetch(`/v1/jobs/job_aaaaaaaaaaaaaaaaaaaa/logs?follow=true`);
  expect(res.status).toBe(404);
  expect((await res.json()).error.code).toBe('JOB_NOT_FOUND');
});
