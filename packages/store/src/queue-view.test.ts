// The reason a waiting multi-node job gives, in the words the issue asks for.
import type { WorkerInfo } from '@berth/contracts';
import type { QueuedJob } from './placement.js';
import { placeQueue } from './queue-view.js';

function worker(id: string, gpus: number, busy: number, running: string[] = []): WorkerInfo {
  return {
    id,
    host: `host-${id}`,
    mode: 'slots',
    concurrency: 4,
    gpus: Array.from({ length: gpus }, (_, i) => ({
      index: i,
      uuid: `${id}-${i}`,
      name: 'H200',
      ...(i < busy ? { job: 'job_other' } : {}),
    })),
    gpuSource: 'config',
    startedAt: '2026-12-03T00:00:00.000Z',
    lastHeartbeat: '2026-12-03T00:00:00.000Z',
    status: 'live',
    running,
  };
}

const gang = (nodes: number, gpus: number): QueuedJob => ({
  id: 'job_gang',
  gpus,
  nodes,
  notBefore: 0,
  deadline: undefined,
  skips: 0,
  user: 'usr_a',
});

test('a gang says how many nodes of how many GPUs it needs and how many are free now', () => {
  const { places } = placeQueue([gang(2, 8)], [worker('a', 8, 0), worker('b', 8, 8)]);
  expect(places.get('job_gang')).toEqual({
    position: 1,
    reason: 'needs 2 nodes × 8 GPUs; 1 node free now',
    placeable: true,
  });
  const ready = placeQueue([gang(2, 8)], [worker('a', 8, 0), worker('b', 8, 0)]).places.get('job_gang');
  expect(ready?.reason).toBe('next to start: its members are being placed');
  // A worker holding a member's GPUs for the forming gang counts as one of its nodes.
  const forming = placeQueue([gang(2, 8)], [worker('a', 8, 8, ['job_gang']), worker('b', 8, 0)]).places;
  expect(forming.get('job_gang')?.reason).toBe('next to start: its members are being placed');
});

test('a gang larger than the live workers that could host a member is not placeable', () => {
  const { places } = placeQueue([gang(3, 8)], [worker('a', 8, 0), worker('b', 8, 0), worker('c', 4, 0)]);
  expect(places.get('job_gang')).toMatchObject({
    placeable: false,
    reason: 'needs 3 nodes × 8 GPUs; 2 live workers could host one',
  });
});
