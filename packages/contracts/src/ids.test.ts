// Ids drawn from the pool, across its refills: each matches its schema and none shares its random part.
import { TokenId, UserId } from './auth.js';
import { DatasetId } from './datasets.js';
import { newDatasetId, newJobId, newPipelineId, newTokenId, newUserId } from './ids.js';
import { JobId } from './job.js';
import { PipelineId } from './pipelines.js';

const kinds = [
  [newJobId, JobId],
  [newDatasetId, DatasetId],
  [newPipelineId, PipelineId],
  [newUserId, UserId],
  [newTokenId, TokenId],
] as const;

test('each kind of id matches its schema, and 1,000 of them (five refills of the pool) share no random run', () => {
  const ids: string[] = [];
  for (let i = 0; i < 200; i++) {
    for (const [newId, schema] of kinds) {
      const id = newId();
      expect(schema.safeParse(id).success).toBe(true);
      ids.push(id);
    }
  }
  // No 10 characters in a row come twice (by chance about 1 in 10^7): no byte went into two ids.
  const runs = ids.flatMap((id) => {
    const random = id.slice(id.indexOf('_') + 1);
    return Array.from({ length: 11 }, (_, i) => random.slice(i, i + 10));
  });
  expect(new Set(runs).size).toBe(runs.length);
});
