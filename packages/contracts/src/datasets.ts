// Datasets users bring: one uploaded file or archive, unpacked safely and checked against its declared format.
import { z } from 'zod';

export const DatasetFormat = z.enum(['squad', 'classify', 'ner', 'corpus']);
export type DatasetFormat = z.infer<typeof DatasetFormat>;

export const DatasetId = z.string().regex(/^ds_[a-z2-7]{20}$/, 'a dataset id looks like ds_ followed by 20 characters');

export const DatasetReport = z.object({
  format: DatasetFormat,
  ok: z.boolean(),
  examples: z.number().int(),
  files: z.array(z.string()),
  errors: z.array(z.object({ file: z.string(), line: z.number().int().optional(), message: z.string() })),
});
export type DatasetReport = z.infer<typeof DatasetReport>;

export const Dataset = z.object({
  id: DatasetId,
  /** The user who uploaded it: only they, admins and workers (to mount it) read it. */
  owner: z.string(),
  name: z.string(),
  format: DatasetFormat,
  /** Size and sha256 of what was uploaded. */
  size: z.number().int(),
  sha256: z.string(),
  /** Files and bytes once unpacked. */
  files: z.number().int(),
  bytes: z.number().int(),
  createdAt: z.string(),
  report: DatasetReport,
});
export type Dataset = z.infer<typeof Dataset>;
