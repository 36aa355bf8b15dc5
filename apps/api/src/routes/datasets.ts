// Datasets: upload one file or archive (streamed, unpacked safely, validated), list, read, delete, and fetch as tar.
import { Dataset, DatasetFormat, DatasetId, BerthError } from '@berth/contracts';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { ownerFilter } from '../auth/auth.js';
import { routePlugin } from './route-plugin.js';
import { ErrorResponse } from './schemas.js';

const Params = z.strictObject({ id: z.string().max(64) });

export const datasetRoutes = routePlugin('berth-dataset-routes', ['datasets'], async (app, { datasets }) => {
  app.addContentTypeParser(
    ['application/octet-stream', 'application/gzip', 'application/x-tar', 'application/zip'],
    (_request, payload, done) => done(null, payload),
  );

  const load = async (id: string) => {
    if (!DatasetId.safeParse(id).success) throw new BerthError('DATASET_NOT_FOUND', `no dataset ${id}`);
    return datasets.get(id);
  };

  app.post(
    '/v1/datasets',
    {
      bodyLimit: Number.MAX_SAFE_INTEGER,
      schema: {
        tags: ['datasets'],
        operationId: 'uploadDataset',
        summary: 'Upload a dataset: one file, or a .tar/.tar.gz/.zip of files, in a declared format',
        description:
          'The body is the raw file. Archives are unpacked with every entry checked (no absolute paths, no .., no ' +
          'links, capped file count and expanded size); the files are then validated against the format, and a ' +
          'dataset with errors is refused (422) with a report naming file and line.',
        querystring: z.strictObject({
          name: z.string().min(1).max(200),
          format: DatasetFormat,
          /** The file name a single (non-archive) upload gets, e.g. train.json. */
          filename: z
            .string()
            .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/)
            .default('data'),
        }),
        response: {
          201: Dataset,
          400: ErrorResponse,
          413: ErrorResponse,
          415: ErrorResponse,
          422: ErrorResponse,
          503: ErrorResponse,
          507: ErrorResponse,
        },
      },
    },
    async (request, reply) => {
      try {
        const dataset = await datasets.create(request.body as Readable, {
          ...request.query,
          owner: request.caller.user.id,
        });
        return await reply.code(201).header('location', `/v1/datasets/${dataset.id}`).send(dataset);
      } catch (err) {
        // What is left of a refused upload is not read: answer and close the connection.
        reply.header('connection', 'close');
        throw err;
      }
    },
  );

  app.get(
    '/v1/datasets',
    {
      schema: {
        tags: ['datasets'],
        operationId: 'listDatasets',
        summary: "The caller's datasets (an admin's: everyone's), newest first",
        response: { 200: z.object({ datasets: z.array(Dataset) }), 503: ErrorResponse },
      },
    },
    async (request) => {
      const owner = ownerFilter(request.caller);
      const all = await datasets.records.list();
      return { datasets: all.filter((d) => !owner || d.owner === owner) };
    },
  );

  app.get(
    '/v1/datasets/:id',
    {
      schema: {
        tags: ['datasets'],
        operationId: 'getDataset',
        summary: 'One dataset with its validation report',
        params: Params,
        response: { 200: Dataset, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request) => load(request.params.id),
  );

  app.get(
    '/v1/datasets/:id/content',
    {
      schema: {
        tags: ['datasets'],
        operationId: 'getDatasetContent',
        summary: "The dataset's files as a tar stream (workers fetch it once and cache it by sha256)",
        params: Params,
        response: { 404: ErrorResponse, 503: ErrorResponse },
      },
      config: { access: 'any' },
    },
    async (request, reply) => {
      const dataset = await load(request.params.id);
      reply.type('application/x-tar').header('x-berth-sha256', dataset.sha256);
      return reply.send(datasets.tar(dataset.id) as never);
    },
  );

  app.delete(
    '/v1/datasets/:id',
    {
      schema: {
        tags: ['datasets'],
        operationId: 'deleteDataset',
        summary: 'Delete a dataset (refused while a job that has not ended uses it)',
        params: Params,
        response: { 204: z.null(), 404: ErrorResponse, 409: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      const dataset = await load(request.params.id);
      await datasets.remove(dataset.id);
      return reply.code(204).send(null);
    },
  );
});
