// Reads that several routes share: one job by id, and where every queued job stands.
import { BerthError, JobId, type JobRecord } from '@berth/contracts';
import { placeQueue } from '@berth/store';
import type { Services } from '../services.js';

/**
 * The job with this id, with each multi-node attempt's members' states; JOB_NOT_FOUND when there is none or the id
 * is not a job id.
 */
export async function loadJob(services: Services, id: string): Promise<JobRecord> {
  const job = JobId.safeParse(id).success ? await services.store.get(id) : null;
  if (!job) throw new BerthError('JOB_NOT_FOUND', `no job ${id}`);
  return services.store.withMembers(job);
}

/** Every queued job's place and reason, with the workers' free and used GPUs. */
export async function queuePlaces(services: Services) {
  const [queued, workers] = await Promise.all([
    services.placement.queued(),
    services.workers.list(services.lostAfterMs),
  ]);
  return { queued, ...placeQueue(queued, workers) };
}
