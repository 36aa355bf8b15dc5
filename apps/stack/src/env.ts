// The one-machine launcher's configuration: parsed once; the API and worker children get theirs from it.
import { z } from 'zod';
import { StackError } from './stack-error.js';

const Env = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('127.0.0.1'),
  REDIS_URL: z.string().url().optional(),
  DOCKER_HOST: z.string().optional(),
  BERTH_DATA_DIR: z.string().default('./var'),
  LOG_LEVEL: z.string().default('info'),
});

export type StackConfig = z.infer<typeof Env>;

/** @param defaults settings a command prefers when the environment leaves them unset (the demo wants quiet logs). */
export function loadStackConfig(
  defaults: Partial<Record<keyof StackConfig, string>> = {},
  env = process.env,
): StackConfig {
  // An empty variable means unset (`REDIS_URL= npm start`).
  const set = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const parsed = Env.safeParse({ ...defaults, ...set });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new StackError(`berth: bad configuration — ${problems}`);
  }
  return parsed.data;
}
