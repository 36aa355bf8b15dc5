// `berth pipelines run|show|cancel`: the domain-adapt template or steps from a file, and each step's state.
import type { Command } from 'commander';
import type { Pipeline } from '@berth/contracts';
import type { ContextOf } from '../context.js';
import { CliError } from '../cli-error.js';
import { collect, isObject, parsePairs, readSpecFile } from '../inputs.js';
import { printJson, printTable } from '../output.js';

interface RunOptions {
  file?: string;
  name?: string;
  param?: string[];
}

const pipelinePath = (id: string) => `/v1/pipelines/${encodeURIComponent(id)}`;

function printPipeline(p: Pipeline): void {
  process.stdout.write(`${p.id}  ${p.name}  ${p.state}\n\n`);
  printTable(
    ['STEP', 'STATE', 'JOB', 'REASON'],
    p.steps.map((s) => [s.name, s.state, s.job ?? '', s.reason ?? '']),
  );
}

export function pipelineCommands(program: Command, context: ContextOf): void {
  const pipelines = program.command('pipelines').description('Jobs that depend on each other and pass artifacts along');

  pipelines
    .command('run')
    .description('Start a template (domain-adapt) with --param k=v, or the steps in -f FILE; prints its id')
    .argument('[template]', 'template name, e.g. domain-adapt')
    .option('-f, --file <spec>', 'pipeline spec as YAML or JSON: {name, steps: [...]} or {template, params}')
    .option('--name <name>', 'a name for the pipeline')
    .option('--param <k=v>', 'template parameter; values that parse as JSON are sent parsed (repeatable)', collect)
    .action(async (template: string | undefined, opts: RunOptions, cmd: Command) => {
      const ctx = context(cmd);
      const spec = opts.file ? await readSpecFile(opts.file) : {};
      if (template) spec.template = template;
      if (opts.name) spec.name = opts.name;
      if (opts.param) {
        spec.params = { ...(isObject(spec.params) ? spec.params : {}), ...parsePairs(opts.param, '--param', true) };
      }
      if (!spec.template && !spec.steps)
        throw new CliError('INVALID_ARGUMENT', 'pipelines run needs a template or -f SPEC');
      const p = await (await ctx.api()).call<Pipeline>('POST', '/v1/pipelines', spec);
      if (ctx.json) printJson(p);
      else process.stdout.write(`${p.id}\n`);
    });

  pipelines
    .command('show')
    .description("A pipeline with each step's state, job and reason")
    .argument('<id>', 'pipeline id (pl_…)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const p = await (await ctx.api()).get<Pipeline>(pipelinePath(id));
      if (ctx.json) printJson(p);
      else printPipeline(p);
    });

  pipelines
    .command('cancel')
    .description('Cancel every step not yet ended')
    .argument('<id>', 'pipeline id (pl_…)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const p = await (await ctx.api()).call<Pipeline>('POST', `${pipelinePath(id)}/cancel`);
      if (ctx.json) printJson(p);
      else printPipeline(p);
    });
}
