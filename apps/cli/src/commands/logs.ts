// `berth logs <job>`: the lines so far (paged), the last N, or followed live over SSE until the job ends.
import type { Command } from 'commander';
import type { JobRecord, JobState, LogBatch, LogLine } from '@berth/contracts';
import { TrainingLog } from '@berth/telemetry/training-log';
import { withQuery, type ApiClient } from '../api-client.js';
import type { ContextOf } from '../context.js';
import { positiveInt } from '../inputs.js';
import { note } from '../output.js';
import { followEvents } from '../sse.js';
import { StateWatch } from '../state-watch.js';

interface LogPage {
  lines: LogLine[];
  next: string | null;
  truncated?: number;
}

interface LogOptions {
  follow?: boolean;
  tail?: number;
  attempt?: number;
  raw?: boolean;
}

/** How one line is shown: rendered for reading (TrainingLog), or as printed with `--raw`; null hides it. */
export type Render = (text: string) => string | null;

export function renderer(raw: boolean | undefined): Render {
  if (raw) return (text) => text;
  const log = new TrainingLog();
  return (text) => log.line(text);
}

/** Exit codes of a followed job's outcome: 0 succeeded, 1 failed, 2 cancelled, 3 anything else. */
export const outcomeExitCodes: Partial<Record<JobState, number>> = { succeeded: 0, failed: 1, cancelled: 2 };

/** `failed: EXIT_NONZERO, exit code 3` — the state with why it ended, when it says more. */
export function outcome(job: JobRecord): string {
  const why = [job.reason, job.exitCode !== undefined && job.exitCode !== 0 ? `exit code ${job.exitCode}` : undefined];
  const said = why.filter(Boolean).join(', ');
  return said ? `${job.state}: ${said}` : job.state;
}

/**
 * Follows the log to the job's end, saying its state changes on the way, then says how it ended (and why, for a failure) and sets the exit code from it.
 * Ctrl-C detaches, saying how to follow again and how to stop the job: the job itself runs on.
 */
export async function followToOutcome(
  api: ApiClient,
  job: string,
  o: { attempt?: number | undefined; after?: string | undefined; render: Render },
): Promise<void> {
  const detach = () => {
    note(
      `\ndetached from ${job}; it keeps running. Follow it again: berth logs -f ${job}; stop it: berth cancel ${job}`,
    );
    process.exit(130);
  };
  process.once('SIGINT', detach);
  const states = new StateWatch(api, job);
  states.start();
  try {
    await followLogs(api, job, o);
  } finally {
    process.off('SIGINT', detach);
  }
  const ended = await api.get<JobRecord>(`/v1/jobs/${encodeURIComponent(job)}`);
  await states.finish(ended);
  note(`${job} ${outcome(ended)}`);
  if (ended.state === 'failed' && ended.message) {
    // Why, under the outcome: the message (an exit code is said above already) and the container's last stderr lines.
    const [first, ...stderr] = ended.message.split('\n');
    if (ended.reason !== 'EXIT_NONZERO' && first) note(`  ${first}`);
    for (const line of stderr) note(`  ${line}`);
  }
  process.exitCode = outcomeExitCodes[ended.state] ?? 3;
}

export function logsCommand(program: Command, context: ContextOf): void {
  program
    .command('logs')
    .description("A job's log; -f follows it until the job ends, resuming exactly where a dropped connection left off")
    .argument('<job>', 'job id')
    .option('-f, --follow', 'keep following until the job ends')
    .option('--tail <n>', 'only the last N lines', positiveInt)
    .option('--attempt <n>', "only this attempt's lines", positiveInt)
    .option('--raw', 'the lines as the job printed them (DLLogger JSON and all), not rendered for reading')
    .action(async (job: string, opts: LogOptions, cmd: Command) => {
      const api = await context(cmd).api();
      const render = renderer(opts.raw);
      if (opts.follow && opts.tail === undefined) {
        await followToOutcome(api, job, { attempt: opts.attempt, render });
        return;
      }
      const last = await printLogs(api, job, opts, render);
      if (opts.follow) await followToOutcome(api, job, { attempt: opts.attempt, after: last, render });
    });
}

/** Prints the lines so far (or the last `tail`), page by page; returns the last line's id. */
async function printLogs(
  api: ApiClient,
  job: string,
  { tail, attempt }: LogOptions,
  render: Render,
): Promise<string | undefined> {
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
    process.stdout.write(
      shown(
        page.lines.map((l) => l.text),
        render,
      ),
    );
    last = page.lines.at(-1)?.id ?? last;
    if (tail !== undefined || !page.next) return last;
    after = page.next;
  }
}

/** The lines as shown, each ending in a newline; hidden ones left out. */
function shown(lines: readonly string[], render: Render): string {
  let out = '';
  for (const text of lines) {
    const line = render(text);
    if (line !== null) out += `${line}\n`;
  }
  return out;
}

/** Prints the log live until the job ends; returns the state it ended in. */
export async function followLogs(
  api: ApiClient,
  job: string,
  { attempt, after, render }: { attempt?: number | undefined; after?: string | undefined; render: Render },
): Promise<JobState> {
  const path = withQuery(`/v1/jobs/${encodeURIComponent(job)}/logs`, { follow: true, attempt });
  const end = await followEvents(
    api,
    path,
    (e) => {
      if (e.event === 'log') process.stdout.write(shown((JSON.parse(e.data) as LogBatch).lines, render));
      else if (e.event === 'truncated') note((JSON.parse(e.data) as { message: string }).message);
    },
    after,
  );
  return (JSON.parse(end.data) as { state: JobState }).state;
}
