// While a log is followed, the job's state changes said on stderr as they happen: where it waits in the queue and
// why, when it pulls, starts and runs (on which worker), uploads, and when a failed attempt is queued to retry.
import type { JobRecord, StateChange } from '@berth/contracts';
import { terminalStates } from '@berth/contracts/job-states';
import type { ApiClient } from './api-client.js';
import { note } from './output.js';

/** `running on w-1 (attempt 1)`, `queued #2: waits for 1 GPU` — one change as a person reads it. */
export function stateLine(change: StateChange, job: JobRecord, current: boolean): string {
  const attempt = job.attempts.find((a) => a.attempt === change.attempt);
  switch (change.state) {
    case 'queued': {
      const retry = change.attempt > 0 ? ` to retry (attempt ${change.attempt} ended ${change.reason ?? 'early'})` : '';
      const place = current && job.queue ? ` #${job.queue.position}: ${job.queue.reason}` : '';
      return `queued${retry}${place}`;
    }
    case 'pulling':
      return `pulling the ${job.spec.manifest} image on ${attempt?.worker ?? 'a worker'}`;
    case 'starting':
    case 'running':
      return `${change.state} on ${attempt?.worker ?? 'a worker'} (attempt ${change.attempt})`;
    default:
      return change.state;
  }
}

/**
 * Reads the job every `pollMs` and says each state change it has not said yet; the first read says only the state
 * the job is in, so a second follower of a long job is not shown its whole history. Terminal states are left to the
 * outcome line of whoever follows.
 */
export class StateWatch {
  private said = -1;
  private queueReason: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> = Promise.resolve();

  constructor(
    private readonly api: ApiClient,
    private readonly job: string,
    /** How often the job is read while its log is followed; a state change is said at most this late. */
    private readonly pollMs = 2000,
  ) {}

  start(): void {
    const tick = () => {
      this.reading = this.read().finally(() => {
        if (this.timer) this.timer = setTimeout(tick, this.pollMs).unref();
      });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  /** Stops reading and says what `ended` holds that was not said yet. */
  async finish(ended: JobRecord): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.reading;
    this.say(ended);
  }

  private async read(): Promise<void> {
    try {
      this.say(await this.api.get<JobRecord>(`/v1/jobs/${encodeURIComponent(this.job)}`));
    } catch {
      // The log follow says when the API is unreachable for good; a missed read only delays a state line.
    }
  }

  private say(job: JobRecord): void {
    const { history } = job;
    const from = this.said === -1 ? Math.max(0, history.length - 1) : this.said;
    for (let i = from; i < history.length; i++) {
      const change = history[i]!;
      const current = i === history.length - 1;
      if (!terminalStates.has(change.state)) note(`[berth] ${stateLine(change, job, current)}`);
      if (current) this.queueReason = job.queue?.reason;
    }
    if (from === history.length && job.queue && job.queue.reason !== this.queueReason) {
      this.queueReason = job.queue.reason;
      note(`[berth] still queued #${job.queue.position}: ${job.queue.reason}`);
    }
    this.said = history.length;
  }
}
