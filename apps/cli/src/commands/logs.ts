// `berth logs <job>`: the lines so far (paged), the last N, or followed live over SSE until the job ends.
import type { Command } from 'commander';
import type { JobState, LogBatch, LogLine } from '@berth/contracts';
import { withQuery, type ApiClient } from '../api-client.js';
import type { ContextOf } from '../cli.js';
import { positiveInt } from '../inputs.js';
import { note } from '../output.js';
import { followEvents } from '../sse.js';

interface LogPage {
  lines: LogLine[];
  next: string | null;
  truncated?: number;
}

interface LogOptions {
  follow?: boolean;
  tail?: number;
  attempt?: number;
}

export function logsCommand(program: Command, context: ContextOf): void {
  program
    .command('logs')
    .description("A job's log; -f follows it until the job ends, resuming exactly where a dropped connection left off")
    .argument('<job>', 'job id')
    .option('-f, --follow', 'keep following until the job ends')
    .option('--tail <n>', 'only the last N lines', positiveInt)
    .option('--attempt <n>', "only this attempt's lines", positiveInt)
    .action(async (job: string, opts: LogOptions, cmd: Command) => {
      const api = await context(cmd).api();
      if (opts.follow && opts.tail === undefined) {
        await followLogs(api, job, { attempt: opts.attempt });
        return;
      }
      const last = await printLogs(api, job, opts);
      if (opts.follow) await followLogs(api, job, { attempt: opts.attempt, after: last });
    });
}

/** Prints the lines so far (or the last `tail`), page by page; returns the last line's id. */
async function printLogs(api: ApiClient, job: string, { tail, attempt }: LogOptions): Promise<string | undefined> {
  let after: string | undefined;
  let last: string | undefined;
  for (;;) {
    const page = await api.call<LogPage>(
      'GET',
      withQuery(`/v1/jobs/${encodeURIComponent(job)}/logs`, { tail, attempt, after }),
      undefined,
      { accept: 'application/json' },
    );
    if (page.truncated) note(`[berth] ${page.truncated} older lines are only in the attempt's log artifact`);
    process.stdout.write(page.lines.map((l) => `${l.text}\n`).join(''));
    last = page.lines.at(-1)?.id ?? last;
    if (tail !== undefined || !page.next) return last;
    after = page.next;
  }
}

/** Prints the log live until the job ends; returns the state it ended in. */
export async function followLogs(
  api: ApiClient,
  job: string,
  { attempt, after }: { attempt?: number | undefined; after?: string | undefined },
): Promise<JobState> {
  const path = withQuery(`/v1/jobs/${encodeURIComponent(job)}/logs`, { follow: true, attempt });
  const end = await followEvents(
    api,
    path,
    (e) => {
      if (e.event === 'log') process.stdout.write(`${(JSON.parse(e.data) as LogBatch).lines.join('\n')}\n`);
      else if (e.event === 'truncated') note((JSON.parse(e.data) as { message: string }).message);
    },
    after,
  );
  return (JSON.parse(end.data) as { state: JobState }).state;
}
