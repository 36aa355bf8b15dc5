// Stops and removes berth containers nobody owns any more, after a grace period: the attempt ended, moved to
// another worker, or belonged to a worker that was written off.
import { ownerToken, type Placement, type WorkerRegistry } from '@berth/store';
import type { Logger } from 'pino';
import type { ContainerRuntime } from '../executor/container-runtime.js';

export interface OrphanSweeperOptions {
  runtime: ContainerRuntime;
  placement: Placement;
  registry: WorkerRegistry;
  prefix: string;
  workerId: string;
  /** True while this worker runs that attempt itself. */
  isRunningHere(jobId: string, attempt: number): boolean;
  graceMs: number;
  lostAfterMs: number;
  logger: Logger;
}

export class OrphanSweeper {
  /** Container name → when it was first seen without an owner. */
  private readonly unowned = new Map<string, number>();

  constructor(private readonly o: OrphanSweeperOptions) {}

  async sweep(now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    const live = new Set(
      (await this.o.registry.list(this.o.lostAfterMs)).filter((w) => w.status === 'live').map((w) => w.id),
    );
    const seen = new Set<string>();
    for (const c of await this.o.runtime.list(this.o.prefix)) {
      seen.add(c.name);
      if (await this.owned(c.job, c.attempt, c.worker, live, c.node ?? 0)) {
        this.unowned.delete(c.name);
        continue;
      }
      const since = this.unowned.get(c.name) ?? now;
      this.unowned.set(c.name, since);
      if (now - since < this.o.graceMs) continue;
      this.o.logger.warn({ container: c.name, job: c.job, attempt: c.attempt }, 'removing a container nobody owns');
      await this.o.runtime.stop(c.name, 10);
      await this.o.runtime.remove(c.name);
      this.unowned.delete(c.name);
      removed.push(c.name);
    }
    for (const name of this.unowned.keys()) if (!seen.has(name)) this.unowned.delete(name);
    return removed;
  }

  private async owned(job: string, attempt: number, worker: string, live: Set<string>, node: number): Promise<boolean> {
    // A multi-node member's container is its worker's while the record runs that gang attempt (the head owns it).
    const ownedBy =
      node > 0
        ? await this.o.placement.isSeated(job, attempt, node, ownerToken(worker, attempt))
        : (await this.o.placement.owner(job)) === ownerToken(worker, attempt);
    if (!ownedBy) return false;
    return worker === this.o.workerId ? this.o.isRunningHere(job, attempt) : live.has(worker);
  }
}
