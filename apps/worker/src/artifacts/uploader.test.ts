import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResultsTree } from './results-tree.js';
import { ArtifactUploader, AttemptFenced } from './uploader.js';

/** An API stand-in that answers every upload with `status`, counting them. */
async function api(status: number): Promise<{ server: Server; url: string; puts: () => number }> {
  let puts = 0;
  const server = createServer((req, res) => {
    puts++;
    req.resume();
    req.on('end', () => res.writeHead(status).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { server, url: `http://127.0.0.1:${port}`, puts: () => puts };
}

function results(): ResultsTree {
  const root = mkdtempSync(join(tmpdir(), 'berth-upload-'));
  mkdirSync(join(root, 'checkpoints/step-1'), { recursive: true });
  writeFileSync(join(root, 'checkpoints/step-1/state.pt'), 'state');
  return new ResultsTree(root, { maxBytes: 1024 ** 2, maxFiles: 100 });
}

test('a 409 from the API means the attempt was fenced: no retry, and the caller is told to stop', async () => {
  const stub = await api(409);
  try {
    const tree = results();
    const uploader = new ArtifactUploader({ url: stub.url, token: 't' }, 'job_x', 1, tree, []);
    await expect(uploader.uploadCheckpoints(await tree.scan())).rejects.toBeInstanceOf(AttemptFenced);
    expect(stub.puts()).toBe(1);
  } finally {
    stub.server.close();
  }
});

test('a file is sent once, and again only after it changed', async () => {
  const stub = await api(201);
  try {
    const tree = results();
    const uploader = new ArtifactUploader({ url: stub.url, token: 't' }, 'job_x', 1, tree, []);
    expect(await uploader.uploadCheckpoints(await tree.scan())).toBe(1);
    expect(await uploader.uploadCheckpoints(await tree.scan())).toBe(0);
    expect(stub.puts()).toBe(1);
  } finally {
    stub.server.close();
  }
});
