// A job's artifacts: the worker uploads them; users list, download (Range, ETag, sha256), fetch folders as tar, delete.
import { Artifact, ArtifactKind, ArtifactPath, BerthError } from '@berth/contracts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { loadJob } from '../jobs/job-reads.js';
import { routePlugin } from './route-plugin.js';
import { ErrorResponse } from './schemas.js';

const Params = z.strictObject({ id: z.string().max(64), '*': z.string().max(2048) });

function artifactPath(raw: string): string {
  const parsed = ArtifactPath.safeParse(raw.replace(/\/+$/, ''));
  if (!parsed.success) {
    throw new BerthError('VALIDATION_FAILED', 'not an artifact path', {
      issues: [{ path: 'params.*', message: parsed.error.issues[0]?.message ?? 'invalid path' }],
    });
  }
  return parsed.data;
}

/** `bytes=a-b`, `bytes=a-` or `bytes=-n` against a size; null for none or several ranges (whole file then). */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'invalid' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return header.includes(',') ? null : 'invalid';
  const [, from, to] = m;
  if (from === '' && to === '') return 'invalid';
  if (from === '') {
    const n = Number(to);
    if (n === 0) return 'invalid';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(from);
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (start >= size || start > end) return 'invalid';
  return { start, end };
}

function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export const artifactRoutes = routePlugin(
  'berth-artifact-routes',
  ['store', 'artifacts'],
  async (app, { store, artifacts }) => {
    // Uploads are raw bytes streamed to disk, never buffered: the body is handed over as a stream.
    app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

    app.get(
      '/v1/jobs/:id/artifacts',
      {
        schema: {
          tags: ['artifacts'],
          operationId: 'listArtifacts',
          summary: "A job's artifacts with size, sha256 and kind",
          params: z.strictObject({ id: z.string().max(64) }),
          response: { 200: z.object({ artifacts: z.array(Artifact) }), 404: ErrorResponse, 503: ErrorResponse },
        },
        config: { access: 'any' },
      },
      async (request) => {
        const job = await loadJob(store, request.params.id);
        return { artifacts: await artifacts.index.list(job.id) };
      },
    );

    app.put(
      '/v1/jobs/:id/artifacts/*',
      {
        bodyLimit: Number.MAX_SAFE_INTEGER,
        schema: {
          tags: ['artifacts'],
          operationId: 'uploadArtifact',
          summary: 'Upload one file from a job’s /results (workers do this)',
          description:
            'The body is the raw file (application/octet-stream). It is hashed on the way into a temporary file ' +
            'that is renamed into place only when complete, so a listed artifact is always whole. Only the attempt ' +
            'that owns the job now (x-berth-attempt), while it pulls, starts, runs or uploads, may upload: any ' +
            'other answers 409 ATTEMPT_FENCED and leaves nothing behind.',
          params: Params,
          headers: z
            .object({
              'x-berth-attempt': z.coerce.number().int().min(1),
              'x-berth-kind': ArtifactKind.default('other'),
              'content-length': z.coerce.number().int().min(0).optional(),
            })
            .passthrough(),
          response: {
            201: Artifact,
            400: ErrorResponse,
            404: ErrorResponse,
            409: ErrorResponse,
            413: ErrorResponse,
            503: ErrorResponse,
            507: ErrorResponse,
          },
        },
        config: { access: 'worker' },
      },
      async (request, reply) => {
        const job = await loadJob(store, request.params.id);
        const path = artifactPath(request.params['*']);
        const size = request.headers['content-length'];
        try {
          const artifact = await artifacts.put(job.id, path, request.body as Readable, {
            kind: request.headers['x-berth-kind'],
            attempt: request.headers['x-berth-attempt'],
            size,
          });
          return await reply.code(201).send(artifact);
        } catch (err) {
          // The rest of the body is not wanted: answer, then close the connection instead of reading it.
          reply.header('connection', 'close');
          throw err;
        }
      },
    );

    const download = async (request: FastifyRequest, reply: FastifyReply) => {
      const params = request.params as z.infer<typeof Params>;
      const job = await loadJob(store, params.id);
      const path = params['*'] === 'latest' ? 'latest' : artifactPath(params['*']);
      // `latest` is the newest checkpoint of the job's current attempt, or of the one `?attempt=` names.
      const asked = Number((request.query as { attempt?: string }).attempt);
      const attempt = Number.isInteger(asked) && asked >= 1 ? asked : job.attempt;
      const target = await artifacts.resolve(job.id, path, attempt);
      if ('folder' in target) {
        const name = `${target.folder.split('/').at(-1)}.tar`;
        // A folder's identity is its files' paths and contents: the key workers cache it under.
        const listing = target.files.map((f) => `${f.path.slice(target.folder.length + 1)} ${f.sha256}\n`).join('');
        return reply
          .type('application/x-tar')
          .header('x-berth-sha256', createHash('sha256').update(listing).digest('hex'))
          .header('content-disposition', contentDisposition(name))
          .send(artifacts.tar(job.id, target.folder, target.files));
      }
      const a = target.file;
      const etag = `"${a.sha256}"`;
      reply
        .header('etag', etag)
        .header('accept-ranges', 'bytes')
        .header('x-berth-sha256', a.sha256)
        .header('repr-digest', `sha-256=:${Buffer.from(a.sha256, 'hex').toString('base64')}:`)
        .header('content-disposition', contentDisposition(a.path.split('/').at(-1)!))
        .type('application/octet-stream');
      const inm = request.headers['if-none-match'];
      if (inm && (inm === '*' || inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag))) {
        return reply.code(304).send();
      }
      const ifRange = request.headers['if-range'];
      const range = ifRange && ifRange !== etag ? null : parseRange(request.headers.range, a.size);
      if (range === 'invalid') {
        return reply
          .code(416)
          .header('content-range', `bytes */${a.size}`)
          .type('application/json')
          .send(new BerthError('RANGE_NOT_SATISFIABLE', `the file has ${a.size} bytes`).toBody());
      }
      if (range) {
        reply
          .code(206)
          .header('content-range', `bytes ${range.start}-${range.end}/${a.size}`)
          .header('content-length', range.end - range.start + 1);
      } else {
        reply.header('content-length', a.size);
      }
      const files = artifacts.store;
      if (request.method === 'GET' && files.send) {
        await files.send(job.id, a.sha256, range ?? undefined, reply.raw, () => {
          reply.hijack();
          reply.raw.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
        });
        return reply;
      }
      return reply.send(files.read(job.id, a.sha256, range ?? undefined));
    };

    app.get(
      '/v1/jobs/:id/artifacts/*',
      {
        schema: {
          tags: ['artifacts'],
          operationId: 'downloadArtifact',
          summary: 'Download an artifact (Range, ETag, sha256), a folder as tar, or `latest` (the newest checkpoint)',
          params: Params,
          response: { 400: ErrorResponse, 404: ErrorResponse, 416: ErrorResponse, 503: ErrorResponse },
        },
        config: { access: 'any' },
      },
      download,
    );

    app.delete(
      '/v1/jobs/:id/artifacts/*',
      {
        schema: {
          tags: ['artifacts'],
          operationId: 'deleteArtifact',
          summary: 'Delete an artifact or a folder of them',
          params: Params,
          response: {
            200: z.object({ deleted: z.array(z.string()) }),
            400: ErrorResponse,
            404: ErrorResponse,
            503: ErrorResponse,
          },
        },
      },
      async (request) => {
        const job = await loadJob(store, request.params.id);
        const gone = await artifacts.remove(job.id, artifactPath(request.params['*']));
        return { deleted: gone.map((a) => a.path) };
      },
    );
  },
);
