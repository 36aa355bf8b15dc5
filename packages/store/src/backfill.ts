// Backfill ahead of a multi-node job: a single job that is sure to end before a waiting gang could start anyway cannot
// delay it, so it may start first (EASY backfilling, as Slurm's backfill scheduler does, with each placed job's
// maxRuntime as its bound). Without a bound nothing is sure, and nothing backfills: a job with no maxRuntime, or a
// host whose running job has none, keeps today's rule (a gang may be passed maxBypass times, then hosts drain for it).
import type { GpuMode } from '@berth/contracts';

/** One GPU worker as backfill weighs it: what it runs now, and by when each of those is sure to have ended. */
export interface HostState {
  id: string;
  mode: GpuMode;
  concurrency: number;
  /** GPU UUIDs: the ledger's keys. */
  gpus: readonly string[];
  /** GPU UUID → the hold on it ('' or absent when free). */
  ledger: Readonly<Record<string, string>>;
  /** The holds placed on the worker (`jobId#attempt`), GPU jobs and CPU jobs alike. */
  holds: readonly string[];
  /** Hold → the time (ms, Redis's clock) by which it is sure to have ended; a hold with no bound is absent. */
  endsBy: ReadonlyMap<string, number>;
}

/**
 * The earliest time by which `host` is sure to have room for one member of `gpus` GPUs (`now` when it has room now):
 * its holds are let go in the order they are bound to end until the member fits. Infinity when a hold it must wait
 * for has no bound, or when the member can never fit there.
 */
export function readyAt(host: HostState, gpus: number, now: number): number {
  const total = host.gpus.length;
  if (gpus > total) return Infinity;
  const held = new Map<string, number>();
  for (const u of host.gpus) {
    const hold = host.ledger[u];
    if (hold) held.set(hold, (held.get(hold) ?? 0) + 1);
  }
  let busy = total - host.gpus.filter((u) => !host.ledger[u]).length;
  let slots = host.holds.length;
  const room = () => slots < host.concurrency && (host.mode === 'whole-host' ? busy === 0 : total - busy >= gpus);
  if (room()) return now;
  const ending = host.holds.map((h) => ({ hold: h, at: host.endsBy.get(h) ?? Infinity })).sort((a, b) => a.at - b.at);
  for (const { hold, at } of ending) {
    if (at === Infinity) return Infinity;
    busy -= held.get(hold) ?? 0;
    slots--;
    if (room()) return Math.max(now, at);
  }
  return Infinity;
}

/**
 * By when a gang is sure to have every member: `holding` of its `nodes` members hold their GPUs now, and each other
 * host that could seat one is sure to have room by its time in `ready`. Infinity when too few hosts are bound.
 */
export function shadowOf(nodes: number, holding: number, ready: readonly number[]): number {
  const needed = nodes - holding;
  if (needed <= 0) return -Infinity;
  return [...ready].sort((a, b) => a - b)[needed - 1] ?? Infinity;
}

/**
 * Whether a job sure to end by `until` may start on this host without moving the gang's shadow: this host is sure of
 * room by `selfReady` without the job, and by the later of the two with it; `others` are the other candidate hosts'
 * times. False when the shadow has no bound: then the job could delay the gang by any amount.
 */
export function spares(
  gang: { nodes: number; holding: number },
  others: readonly number[],
  selfReady: number,
  until: number,
): boolean {
  const before = shadowOf(gang.nodes, gang.holding, [...others, selfReady]);
  if (!Number.isFinite(before)) return false;
  return shadowOf(gang.nodes, gang.holding, [...others, Math.max(selfReady, until)]) <= before;
}
