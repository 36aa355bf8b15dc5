// A worker registered as the store tests need one: no GPUs, one slot, registered now.
import type { WorkerRegistry } from '../../packages/store/src/worker-registry.js';

export function registerWorker(registry: WorkerRegistry, id: string): ReturnType<WorkerRegistry['register']> {
  return registry.register({
    id,
    host: 'host-a',
    mode: 'slots',
    concurrency: 1,
    gpus: [],
    gpuSource: 'none',
    startedAt: new Date().toISOString(),
  });
}
