// `berth artifacts ls|pull`: a job's stored files; pull resumes a cut download and checks its sha256.
import type { Command } from 'commander';
import type { Artifact } from '@berth/contracts';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { isTransient, networkCause, type ApiClient } from '../api-client.js';
import type { ContextOf } from '../context.js';
import { CliError } from '../cli-error.js';
import { bytes, note, printJson, printTable, time } from '../output.js';
import { progressBar } from '../progress.js';

/** Tries in a row that may end without a byte more before a pull gives up (keeping the .part for a rerun). */
const maxStalls = 5;

export function artifactCommands(program: Command, context: ContextOf): void {
  const artifacts = program.command('artifacts').description("A job's artifacts: checkpoints, models, logs");

  artifacts
    .command('ls')
    .description("A job's artifacts with size, kind and sha256")
    .argument('<job>', 'job id')
    .action(async (job: string, _opts: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const { artifacts: list } = await (
        await ctx.api()
      ).get<{ artifacts: Artifact[] }>(`/v1/jobs/${encodeURIComponent(job)}/artifacts`);
      if (ctx.json) return printJson({ artifacts: list });
      printTable(
        ['PATH', 'SIZE', 'KIND', 'ATTEMPT', 'CREATED', 'SHA256'],
        list.map((a) => [a.path, bytes(a.size), a.kind, String(a.attempt), time(a.createdAt), a.sha256]),
      );
    });

  artifacts
    .command('pull')
    .description(
      'Download an artifact (a folder comes as a tar, `latest` is the newest checkpoint). It is written to OUT.part ' +
        'first: a cut download, or a rerun after one, continues where it stopped; the sha256 is checked at the end.',
    )
    .argument('<job>', 'job id')
    .argument('<path>', 'artifact path, e.g. model/weights.bin, or latest')
    .option('-o, --output <file>', 'where to write it (default: the last part of the path)')
    .action(async (job: string, path: string, opts: { output?: string }, cmd: Command) => {
      const ctx = context(cmd);
      let out = opts.output ?? basename(path);
      const url = `/v1/jobs/${encodeURIComponent(job)}/artifacts/${path.split('/').map(encodeURIComponent).join('/')}`;
      const { tar, ...got } = await pull(await ctx.api(), url, out);
      // A folder comes as a tar: named so, unless -o said otherwise, and said so.
      if (tar && !opts.output && !out.endsWith('.tar')) {
        await rename(out, `${out}.tar`);
        out = `${out}.tar`;
      }
      if (ctx.json) printJson({ path: out, ...got, ...(tar ? { tar } : {}) });
      else process.stdout.write(`${out}\n`);
      if (tar && !ctx.json) note(`${out} is a tar of the folder ${basename(path)}/: unpack it with tar -xf ${out}`);
    });
}

/**
 * Downloads into `out.part`, remembering the response's ETag in `out.part.etag`; a .part with its ETag is continued
 * with Range + If-Range (the API sends the whole file instead when it changed). A file's bytes must hash to its
 * X-Berth-Sha256 before `out.part` becomes `out`; a mismatch removes the .part.
 */
async function pull(
  api: ApiClient,
  url: string,
  out: string,
): Promise<{ size: number; sha256?: string; tar: boolean }> {
  const part = `${out}.part`;
  const etagFile = `${part}.etag`;
  let etag = await readFile(etagFile, 'utf8').catch(() => undefined);
  let sha256: string | null = null;
  let tar = false;
  for (let stalls = 0; ;) {
    const offset = etag ? await sizeOf(part) : 0;
    let res: Response;
    try {
      res = await api.request(url, {
        headers: offset > 0 && etag ? { range: `bytes=${offset}-`, 'if-range': etag } : {},
        allow: [416],
      });
    } catch (err) {
      if (!isTransient(err) || ++stalls >= maxStalls) throw err;
      await pause(stalls);
      continue;
    }
    if (res.status === 416) {
      // The .part is as long as the file or longer: it cannot be trusted, so start again.
      await res.body?.cancel();
      etag = undefined;
      continue;
    }
    const resumed = res.status === 206;
    tar = (res.headers.get('content-type') ?? '').includes('tar');
    etag = res.headers.get('etag') ?? undefined;
    sha256 = res.headers.get('x-berth-sha256');
    const total = resumed
      ? Number(res.headers.get('content-range')?.split('/')[1])
      : Number(res.headers.get('content-length') ?? NaN);
    if (etag) await writeFile(etagFile, etag);
    else await rm(etagFile, { force: true });
    const bar = progressBar(basename(out), Number.isFinite(total) ? total : undefined);
    const file = await open(part, resumed ? 'a' : 'w');
    const start = resumed ? offset : 0;
    let done = start;
    let cut: unknown;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        await file.write(chunk);
        bar.update((done += chunk.length));
      }
    } catch (err) {
      if (!isTransient(err)) throw err;
      cut = err;
    } finally {
      await file.close();
    }
    if (!cut && (!Number.isFinite(total) || done === total)) {
      bar.finish();
      break;
    }
    stalls = done > start ? 0 : stalls + 1;
    if (stalls >= maxStalls) {
      throw new CliError(
        'DOWNLOAD_INTERRUPTED',
        `${url}: ${cut ? networkCause(cut) : 'the answer ended early'}; ${done} bytes are in ${part}: run the same pull again to continue`,
      );
    }
    await pause(stalls);
  }
  // A folder's tar has no ETag, and its X-Berth-Sha256 names the folder's listing, not the tar's bytes.
  if (etag && sha256) {
    const actual = await sha256Of(part);
    if (actual !== sha256) {
      await rm(part, { force: true });
      await rm(etagFile, { force: true });
      throw new CliError(
        'SHA256_MISMATCH',
        `${url}: the bytes hash to ${actual}, the API says ${sha256}; removed ${part}`,
      );
    }
  }
  await rename(part, out);
  await rm(etagFile, { force: true });
  return { size: await sizeOf(out), ...(etag && sha256 ? { sha256 } : {}), tar };
}

async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  );
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const pause = (n: number) => new Promise((r) => setTimeout(r, Math.min(250 * 2 ** n, 4000)));
