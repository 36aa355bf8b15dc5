// What a worker tells the cluster about itself, and what GET /v1/workers and GET /v1/queue show.
import { z } from 'zod';

export const GpuMode = z.enum(['whole-host', 'slots']);
export type GpuMode = z.infer<typeof GpuMode>;

export const WorkerGpu = z.object({
  index: z.number().int().min(0),
  /** The ledger key and the device id handed to Docker. */
  uuid: z.string(),
  name: z.string(),
  memoryMiB: z.number().optional(),
  /** The job holding this GPU, if any. */
  job: z.string().optional(),
});
export type WorkerGpu = z.infer<typeof WorkerGpu>;

export const WorkerInfo = z.object({
  id: z.string(),
  host: z.string(),
  mode: GpuMode,
  /** How many jobs may run at once on this worker. */
  concurrency: z.number().int().min(1),
  gpus: z.array(WorkerGpu),
  gpuSource: z.enum(['nvidia-smi', 'config', 'none']),
  driverVersion: z.string().optional(),
  cudaVersion: z.string().optional(),
  dockerVersion: z.string().optional(),
  startedAt: z.string(),
  lastHeartbeat: z.string(),
  /** `lost` once it has not sent a heartbeat for the lost-after period; its jobs were moved elsewhere. */
  status: z.enum(['live', 'lost']),
  running: z.array(z.string()),
});
export type WorkerInfo = z.infer<typeof WorkerInfo>;
