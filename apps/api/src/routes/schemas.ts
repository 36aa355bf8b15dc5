// Response shapes shared by the routes, for validation and the OpenAPI document.
import { errorStatus } from '@berth/contracts';
import { z } from 'zod';

export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(errorStatus) as [keyof typeof errorStatus, ...(keyof typeof errorStatus)[]]),
      message: z.string(),
      issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .describe('An error with a stable code');
