// `berth datasets push|ls|rm`: upload a file or archive (streamed, with a progress bar), list, delete.
import type { Command } from 'commander';
import type { Dataset } from '@berth/contracts';
import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { CliError } from '../cli-error.js';
import { Readable } from 'node:stream';
import { withQuery } from '../api-client.js';
import type { ContextOf } from '../context.js';
import { bytes, note, printJson, printTable, time } from '../output.js';
import { progressBar } from '../progress.js';

interface PushOptions {
  name?: string;
  format: string;
}

/** The name the API gives a single uploaded file (the trainer looks for e.g. train.json); archives keep theirs. */
const fileNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function datasetCommands(program: Command, context: ContextOf): void {
  const datasets = program.command('datasets').description('Datasets jobs mount at /data');

  datasets
    .command('push')
    .description('Upload a file, a folder, or a .tar/.tar.gz/.zip of files; the API checks it against the format')
    .argument('<file>', 'the file, folder or archive')
    .requiredOption('--format <format>', 'squad, classify, ner or corpus')
    .option('--name <name>', 'a name for it (default: the file name)')
    .action(async (given: string, opts: PushOptions, cmd: Command) => {
      const ctx = context(cmd);
      const api = await ctx.api();
      // A folder goes as a tar of its files (the API unpacks archives); made in a scratch folder, removed after.
      const packed = (await stat(given).catch(() => undefined))?.isDirectory() ? await tarFolder(given) : undefined;
      const file = packed?.file ?? given;
      try {
        const name = basename(file);
        const bar = progressBar(name, (await stat(file)).size);
        let sent = 0;
        const source = createReadStream(file).on('data', (c) => bar.update((sent += c.length)));
        const res = await api.request(
          withQuery('/v1/datasets', {
            name: opts.name ?? (packed ? basename(given) : name),
            format: opts.format,
            filename: fileNamePattern.test(name) ? name : undefined,
          }),
          {
            method: 'POST',
            headers: { 'content-type': 'application/octet-stream' },
            body: Readable.toWeb(source) as ReadableStream<Uint8Array>,
            duplex: 'half',
          } as RequestInit,
        );
        bar.finish();
        const dataset = (await res.json()) as Dataset;
        if (ctx.json) return printJson(dataset);
        process.stdout.write(`${dataset.id}\n`);
        note(`${dataset.name}: ${dataset.report.examples} examples in ${dataset.files} files, ${bytes(dataset.bytes)}`);
      } finally {
        if (packed) await rm(packed.dir, { recursive: true, force: true });
      }
    });

  datasets
    .command('ls')
    .description('Datasets, newest first')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const { datasets: list } = await (await ctx.api()).get<{ datasets: Dataset[] }>('/v1/datasets');
      if (ctx.json) return printJson({ datasets: list });
      printTable(
        ['ID', 'NAME', 'FORMAT', 'EXAMPLES', 'FILES', 'SIZE', 'CREATED'],
        list.map((d) => [
          d.id,
          d.name,
          d.format,
          String(d.report.examples),
          String(d.files),
          bytes(d.bytes),
          time(d.createdAt),
        ]),
      );
    });

  datasets
    .command('rm')
    .description('Delete a dataset (refused while a job that has not ended uses it)')
    .argument('<id>', 'dataset id (ds_…)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await (await context(cmd).api()).call('DELETE', `/v1/datasets/${encodeURIComponent(id)}`);
      process.stdout.write(`deleted ${id}\n`);
    });
}

/** The files of a folder (not the folder itself) in a tar, with the system's tar; refuses an empty folder. */
async function tarFolder(folder: string): Promise<{ dir: string; file: string }> {
  const entries = await readdir(folder);
  if (entries.length === 0) throw new CliError('INVALID_ARGUMENT', `${folder} is empty: nothing to push`);
  const dir = await mkdtemp(join(tmpdir(), 'berth-push-'));
  const file = join(dir, `${basename(folder.replace(/\/+$/, '')) || 'dataset'}.tar`);
  const tar = spawnSync('tar', ['-cf', file, '-C', folder, '--', ...entries], { encoding: 'utf8' });
  if (tar.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new CliError(
      'INVALID_ARGUMENT',
      `could not pack ${folder} with tar (${tar.error?.message ?? tar.stderr.trim()}); push a .tar or .zip of it instead`,
    );
  }
  return { dir, file };
}
