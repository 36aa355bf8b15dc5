// What a job leaves behind: files from its /results (and its full logs), each stored whole with size and sha256.
import { z } from 'zod';

export const ArtifactKind = z.enum(['checkpoint', 'model', 'predictions', 'onnx', 'engine', 'log', 'metrics', 'other']);
export type ArtifactKind = z.infer<typeof ArtifactKind>;

/** A path under /results: relative, `/`-separated, no `.`/`..` segments, no backslashes or control characters. */
export const ArtifactPath = z
  .string()
  .min(1)
  .max(1024)
  .refine(
    (p) =>
      !p.startsWith('/') &&
      ![...p].some((c) => c === '\\' || c.charCodeAt(0) < 0x20) &&
      p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'),
    'a relative path under /results without . or .. segments',
  );

export const Artifact = z.object({
  path: ArtifactPath,
  size: z.number().int().min(0),
  sha256: z.string().regex(/^[a-f0-9]{64}$/),
  kind: ArtifactKind,
  attempt: z.number().int().min(1),
  createdAt: z.string(),
});
export type Artifact = z.infer<typeof Artifact>;
