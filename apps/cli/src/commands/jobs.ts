// Jobs: submit (and follow to the outcome), list, show, cancel, retry, resume.
import type { Command } from 'commander';
import type { JobRecord, JobState } from '@berth/contracts';
import { withQuery } from '../api-client.js';
import type { ContextOf } from '../context.js';
import { CliError } from '../cli-error.js';
import { collect, isObject, parsePairs, positiveInt, readSpecFile, wholeNumber } from '../inputs.js';
import { note, printFields, printJson, printTable, time } from '../output.js';
import { followToOutcome, outcome } from './logs.js';
import { formatValue } from '@berth/telemetry/training-log';

interface SubmitOptions {
  file?: string;
  manifest?: string;
  param?: string[];
  gpus?: number;
  dataset?: string;
  initFrom?: string;
  name?: string;
  notes?: string;
  label?: string[];
  priority?: string;
  idempotencyKey?: string;
  follow?: boolean;
  raw?: boolean;
}

interface ListOptions {
  state?: JobState;
  limit: number;
  cursor?: string;
}

const jobPath = (id: string) => `/v1/jobs/${encodeURIComponent(id)}`;

/** The spec file (if any) with the flags laid over it. */
async function buildSpec(opts: SubmitOptions): Promise<Record<string, unknown>> {
  const spec = opts.file ? await readSpecFile(opts.file) : {};
  const part = (key: string) => (isObject(spec[key]) ? spec[key] : {});
  if (opts.manifest) spec.manifest = opts.manifest;
  if (opts.param) spec.params = { ...part('params'), ...parsePairs(opts.param, '--param', true) };
  if (opts.gpus !== undefined) spec.resources = { ...part('resources'), gpus: opts.gpus };
  if (opts.dataset) spec.inputs = { ...part('inputs'), dataset: opts.dataset };
  if (opts.initFrom) spec.inputs = { ...part('inputs'), initFrom: parseInitFrom(opts.initFrom) };
  if (opts.name) spec.name = opts.name;
  if (opts.notes) spec.notes = opts.notes;
  if (opts.label) spec.labels = { ...part('labels'), ...parsePairs(opts.label, '--label', false) };
  // The API checks the value and answers INVALID_ARGUMENT with the allowed ones.
  if (opts.priority) spec.priority = opts.priority;
  if (spec.manifest === undefined) throw new CliError('INVALID_ARGUMENT', 'submit needs --manifest or -f SPEC');
  return spec;
}

/** `job_x` or `job_x:path`: the job's model (or newest checkpoint) when no artifact is named. */
function parseInitFrom(value: string): { job: string; artifact?: string } {
  const at = value.indexOf(':');
  const job = at < 0 ? value : value.slice(0, at);
  const artifact = at < 0 ? '' : value.slice(at + 1);
  if (!job.startsWith('job_') || (at >= 0 && artifact === '')) {
    throw new CliError(
      'INVALID_ARGUMENT',
      `--init-from takes a job id, optionally with one of its artifacts: job_… or job_…:model (got ${value})`,
    );
  }
  return artifact ? { job, artifact } : { job };
}

export function jobCommands(program: Command, context: ContextOf): void {
  program
    .command('submit')
    .description('Submit a job from flags and/or a spec file; prints its id')
    .option('-f, --file <spec>', 'job spec as YAML or JSON (flags given too override its fields)')
    .option('--manifest <recipe>', 'recipe id, e.g. custom or bert-finetune-squad')
    .option('--param <k=v>', 'recipe parameter; values that parse as JSON are sent parsed (repeatable)', collect)
    .option('--gpus <n>', 'GPUs for the job (0: the CPU image)', wholeNumber)
    .option('--dataset <id>', 'dataset mounted at /data')
    .option(
      '--init-from <job[:artifact]>',
      "another job's artifact mounted at /init: its model folder (or newest checkpoint) unless one is named",
    )
    .option('--name <name>', 'what the run is, shown in lists and on its page')
    .option('--notes <text>', 'free text about the run (why, what changed)')
    .option('--label <k=v>', 'label (repeatable)', collect)
    .option('--priority <level>', 'low, normal (the default) or high: which waiting jobs start first')
    .option('--idempotency-key <key>', 'resubmitting with the same key and spec gives the same job')
    .option('--follow', "stream the log, then exit with the job's outcome: 0 succeeded, 1 failed, 2 cancelled")
    .option('--raw', 'with --follow: the lines as the job printed them, not rendered for reading')
    .action(async (opts: SubmitOptions, cmd: Command) => {
      const ctx = context(cmd);
      const spec = await buildSpec(opts);
      const api = await ctx.api();
      const key = opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : undefined;
      const job = await api.call<JobRecord>('POST', '/v1/jobs', spec, key);
      if (!opts.follow) {
        if (ctx.json) printJson(job);
        else process.stdout.write(`${job.id}\n`);
        return;
      }
      note(`${job.id} submitted; following its log`);
      await followToOutcome(api, job.id, { raw: opts.raw });
    });

  program
    .command('ls')
    .description('Jobs, newest first')
    .option('--state <state>', 'only jobs in this state (queued, running, succeeded, failed, …)')
    .option('--limit <n>', 'at most this many jobs', positiveInt, 50)
    .option('--cursor <cursor>', 'continue from the page a previous ls stopped at')
    .action(async (opts: ListOptions, cmd: Command) => {
      const ctx = context(cmd);
      const api = await ctx.api();
      const jobs: JobRecord[] = [];
      let next = opts.cursor ?? null;
      do {
        const limit = Math.min(200, opts.limit - jobs.length);
        const page = await api.get<{ jobs: JobRecord[]; next: string | null }>(
          withQuery('/v1/jobs', { state: opts.state, limit, cursor: next ?? undefined }),
        );
        jobs.push(...page.jobs);
        next = page.next;
      } while (next && jobs.length < opts.limit);
      if (ctx.json) return printJson({ jobs, next });
      printTable(
        ['ID', 'NAME', 'STATE', 'MANIFEST', 'GPUS', 'CREATED', 'WHY'],
        jobs.map((j) => [
          j.id,
          j.spec.name ?? '',
          j.state,
          j.spec.manifest,
          String(j.spec.resources.gpus ?? ''),
          time(j.createdAt),
          // Why it ended or waits, where that says more than the state.
          [j.reason, j.exitCode ? `exit code ${j.exitCode}` : undefined, j.queue?.reason].filter(Boolean).join(', '),
        ]),
      );
      if (next) note(`more: berth ls --cursor ${next}`);
    });

  program
    .command('show')
    .description('One job: spec, state, why it ended or waits, attempts')
    .argument('<job>', 'job id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const job = await (await ctx.api()).get<JobRecord>(jobPath(id));
      if (ctx.json) return printJson(job);
      printFields([
        ['id', job.id],
        ['name', job.spec.name],
        ['notes', job.spec.notes],
        ['state', outcome(job)],
        ['message', job.message],
        ['owner', (job as { owner?: string }).owner],
        ['manifest', job.spec.manifest],
        ['params', JSON.stringify(job.spec.params)],
        ['gpus', job.spec.resources.gpus],
        ['dataset', job.spec.inputs?.dataset],
        [
          'init from',
          job.spec.inputs?.initFrom &&
            `${job.spec.inputs.initFrom.job}:${job.spec.inputs.initFrom.artifact ?? 'latest'}`,
        ],
        [
          'labels',
          Object.entries(job.spec.labels ?? {})
            .map(([k, v]) => `${k}=${v}`)
            .join(', '),
        ],
        ['queue', job.queue && `#${job.queue.position}: ${job.queue.reason}`],
        ['worker', job.worker],
        ['created', time(job.createdAt)],
        ['started', time(job.startedAt)],
        ['finished', time(job.finishedAt)],
        [
          'summary',
          Object.entries(job.summary ?? {})
            .map(([k, v]) => `${k}=${formatValue(v)}`)
            .join(', '),
        ],
      ]);
      if (job.attempts.length === 0) return;
      process.stdout.write('\n');
      printTable(
        ['ATTEMPT', 'WORKER', 'GPUS', 'STARTED', 'FINISHED', 'STATE', 'REASON', 'EXIT'],
        job.attempts.map((a) => [
          String(a.attempt),
          a.worker,
          String(a.gpus.length),
          time(a.startedAt),
          time(a.finishedAt),
          a.state ?? '',
          a.reason ?? '',
          a.exitCode === undefined ? '' : String(a.exitCode),
        ]),
      );
    });

  program
    .command('cancel')
    .description('Cancel a queued job at once, or stop a running one (SIGTERM, grace, SIGKILL)')
    .argument('<job>', 'job id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const job = await (await ctx.api()).call<JobRecord>('POST', `${jobPath(id)}/cancel`);
      if (ctx.json) printJson(job);
      else process.stdout.write(`${job.id} ${job.state === 'cancelled' ? 'cancelled' : 'stopping'}\n`);
    });

  // Both make a new job from an ended one (the API's POST /v1/jobs/<id>/retry and /resume) and print its id.
  const resubmit: [string, string][] = [
    ['retry', 'Submit a job again with the same spec; prints the new job id'],
    [
      'resume',
      'Continue a failed or cancelled job from its newest checkpoint (recipes that resume); prints the new job id',
    ],
  ];
  for (const [name, description] of resubmit) {
    program
      .command(name)
      .description(description)
      .argument('<job>', 'job id')
      .action(async (id: string, _opts: unknown, cmd: Command) => {
        const ctx = context(cmd);
        const job = await (await ctx.api()).call<JobRecord>('POST', `${jobPath(id)}/${name}`);
        if (ctx.json) printJson(job);
        else process.stdout.write(`${job.id}\n`);
      });
  }
}
