// `berth logs <job>`: the lines so far (paged), the last N, or followed live over SSE until the job ends.
import type { Command } from 'commander';
import type { JobRecord, JobState, LogBatch, LogLine } from '@berth/contracts';
import { TrainingLog } from '@berth/telemetry/training-log';
import { withQuery, type ApiClient } from '../api-client.js';
import type { ContextOf } from '../context.js';
import { positiveInt, wholeNumber } from '../inputs.js';
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
  node?: number;
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
export async function followToOutcome(api: ApiClient, job: string, o: FollowOptions): Promise<void> {
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
    .option(
      '--node <rank>',
      "a multi-node job's member (0 is the head); without it a read shows the head's log and -f every member's",
      wholeNumber,
    )
    .option('--raw', 'the lines as the job printed them (DLLogger JSON and all), not rendered for reading')
    .action(async (job: string, opts: LogOptions, cmd: Command) => {
      const api = await context(cmd).api();
      const render = renderer(opts.raw);
      const { attempt, node, raw } = opts;
      if (opts.follow && opts.tail === undefined) {
        await followToOutcome(api, job, { attempt, node, raw });
        return;
      }
      const last = await printLogs(api, job, opts, render);
      if (opts.follow) await followToOutcome(api, job, { attempt, node, raw, after: last });
    });
}

/** Prints the lines so far (or the last `tail`), page by page; returns the last line's id. */
async function printLogs(
  api: ApiClient,
  job: string,
  { tail, attempt, node }: LogOptions,
  render: Render,
): Promise<string | undefined> {
  let after: string | undefined;
  let last: string | undefined;
  for (;;) {
    const page = await api.call<LogPage>(
      'GET',
      withQuery(`/v1/jobs/${encodeURIComponent(job)}/logs`, { tail, attempt, node, after }),
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

/** The lines as shown, each after `mark` and ending in a newline; hidden ones left out. */
function shown(lines: readonly string[], render: Render, mark = ''): string {
  let out = '';
  for (const text of lines) {
    const line = render(text);
    if (line !== null) out += `${mark}${line}\n`;
  }
  return out;
}

export interface FollowOptions {
  attempt?: number | undefined;
  /** One member of a multi-node job; without it, every member's lines, those after the head's marked `[n<rank>]`. */
  node?: number | undefined;
  after?: string | undefined;
  raw?: boolean | undefined;
}

/** Prints the log live until the job ends; returns the state it ended in. */
export async function followLogs(
  api: ApiClient,
  job: string,
  { attempt, node, after, raw }: FollowOptions,
): Promise<JobState> {
  const path = withQuery(`/v1/jobs/${encodeURIComponent(job)}/logs`, { follow: true, attempt, node });
  // Each member's lines are rendered apart: a renderer keeps state (the run's step count) of one process's log.
  const renders = new Map<number, Render>();
  const end = await followEvents(
    api,
    path,
    (e) => {
      if (e.event === 'log') {
        const batch = JSON.parse(e.data) as LogBatch;
        const from = batch.node ?? 0;
        let render = renders.get(from);
        if (!render) renders.set(from, (render = renderer(raw)));
        process.stdout.write(shown(batch.lines, render, from === 0 ? '' : `[n${from}] `));
      } else if (e.event === 'truncated') note((JSON.parse(e.data) as { message: string }).message);
    },
    after,
  );
  return (JSON.parse(end.data) as { state: JobState }).state;
}
