// Reads that several routes share: one job by id, and where every queued job stands.
import { BerthError, JobId, type JobRecord } from '@berth/contracts';
import { placeQueue, type JobStore, type Placement } from '@berth/store';
import type { Workers } from '../plugins/workers.js';

/**
 * The job with this id, with each multi-node attempt's members' states; JOB_NOT_FOUND when there is none or the id
 * is not a job id.
 */
export async function loadJob(store: JobStore, id: string): Promise<JobRecord> {
  const job = JobId.safeParse(id).success ? await store.get(id) : null;
  if (!job) throw new BerthError('JOB_NOT_FOUND', `no job ${id}`);
  return store.withMembers(job);
}

/** Every queued job's place and reason, with the workers' free and used GPUs. */
export async function queuePlaces(placement: Placement, workers: Workers) {
  const [queued, live] = await Promise.all([placement.queued(), workers.list()]);
  return { queued, ...placeQueue(queued, live) };
}
