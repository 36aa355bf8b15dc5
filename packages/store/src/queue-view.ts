// What people watching the queue see: each waiting job's place and the reason it waits, in plain words.
import type { QueuePlace, WorkerInfo } from '@berth/contracts';
import type { QueuedJob } from './placement.js';

export interface WorkerCapacity {
  id: string;
  host: string;
  status: WorkerInfo['status'];
  mode: WorkerInfo['mode'];
  gpus: number;
  free: number;
  used: number;
  running: string[];
}

export function capacityOf(w: WorkerInfo): WorkerCapacity {
  const used = w.gpus.filter((g) => g.job !== undefined).length;
  return {
    id: w.id,
    host: w.host,
    status: w.status,
    mode: w.mode,
    gpus: w.gpus.length,
    free: w.gpus.length - used,
    used,
    running: w.running,
  };
}

/** The largest number of GPUs one job could get right now on this worker. */
function freeBlock(w: WorkerCapacity): number {
  if (w.mode === 'whole-host') return w.used === 0 ? w.gpus : 0;
  return w.free;
}

const gpusText = (n: number) => `${n} GPU${n === 1 ? '' : 's'}`;

/** Places and reasons for the queue, in the order placement considers it. */
export function placeQueue(queued: readonly QueuedJob[], workers: readonly WorkerInfo[], now = Date.now()) {
  const live = workers.filter((w) => w.status === 'live').map(capacityOf);
  const largest = live.reduce<WorkerCapacity | undefined>((a, w) => (!a || w.gpus > a.gpus ? w : a), undefined);
  const roomiest = live.reduce<WorkerCapacity | undefined>(
    (a, w) => (!a || freeBlock(w) > freeBlock(a) ? w : a),
    undefined,
  );
  const places = new Map<string, QueuePlace>();
  queued.forEach((job, i) => {
    const position = i + 1;
    const needs = `needs ${gpusText(job.gpus)}`;
    let reason: string;
    let placeable = true;
    if (!largest) {
      placeable = false;
      reason =
        workers.length === 0
          ? 'no worker has registered yet'
          : `every worker is lost (${workers.map((w) => w.id).join(', ')})`;
    } else if (job.gpus > largest.gpus) {
      placeable = false;
      reason = `${needs}; the largest live worker has ${largest.gpus} (${largest.host})`;
    } else if (job.nodes > 1 && live.filter((w) => w.gpus >= job.gpus).length < job.nodes) {
      placeable = false;
      const hosts = live.filter((w) => w.gpus >= job.gpus).length;
      reason = `needs ${job.nodes} nodes × ${gpusText(job.gpus)}; ${hosts} live worker${hosts === 1 ? '' : 's'} could host one`;
    } else if (job.notBefore > now) {
      reason = `retrying after a failure, not before ${new Date(job.notBefore).toISOString()}`;
    } else if (job.nodes > 1) {
      // A member holds its GPUs while the gang forms, so a worker that is part of it counts as free for it.
      const free = live.filter((w) => freeBlock(w) >= job.gpus || w.running.includes(job.id)).length;
      reason =
        free >= job.nodes
          ? position === 1
            ? 'next to start: its members are being placed'
            : `waiting behind ${i} job${i === 1 ? '' : 's'}`
          : `needs ${job.nodes} nodes × ${gpusText(job.gpus)}; ${free} node${free === 1 ? '' : 's'} free now`;
    } else if (job.gpus > 0 && roomiest && freeBlock(roomiest) < job.gpus) {
      reason = `${needs}; largest free block is ${freeBlock(roomiest)} on ${roomiest.host}`;
    } else if (position === 1) {
      reason = 'next to start';
    } else {
      reason = `${job.gpus > 0 ? `${needs}; ` : ''}waiting behind ${i} job${i === 1 ? '' : 's'}`;
    }
    places.set(job.id, { position, reason, placeable });
  });
  return { places, workers: live.concat(workers.filter((w) => w.status === 'lost').map(capacityOf)) };
}
