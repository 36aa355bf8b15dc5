// A job's events as a Redis stream, capped so a chatty pull can't grow it without bound.
import { isoNow, JobEvent, type JobEventType } from '@berth/contracts';
import type { Redis } from 'ioredis';
import { keys, type Keys } from './keys.js';

const MAX_EVENTS = 10_000;

export class EventStream {
  private readonly keys: Keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keys(prefix);
  }

  async add(jobId: string, attempt: number, type: JobEventType, data: Record<string, unknown>): Promise<void> {
    await this.redis.xadd(
      this.keys.events(jobId),
      'MAXLEN',
      '~',
      MAX_EVENTS,
      '*',
      'type',
      type,
      'a',
      attempt,
      't',
      isoNow(),
      'd',
      JSON.stringify(data),
    );
  }

  /** Events strictly after `afterId` ('0' for the beginning). */
  async read(jobId: string, afterId = '0', count = 1000): Promise<JobEvent[]> {
    const raw = (await this.redis.xrange(this.keys.events(jobId), `(${afterId}`, '+', 'COUNT', count)) as [
      string,
      string[],
    ][];
    return raw.map(([id, fields]) => {
      const f = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
      return JobEvent.parse({
        id,
        type: f.get('type'),
        attempt: Number(f.get('a')),
        time: f.get('t'),
        data: JSON.parse(f.get('d') ?? '{}'),
      });
    });
  }
}
