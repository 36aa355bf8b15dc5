// The Docker Engine API over its unix socket with node:http: the baseline path of every log benchmark
// ("docker run" + "docker logs -f", as the CLI does it) and the clean-up of the containers a bench made.
import { Buffer } from 'node:buffer';
import { request } from 'node:http';
import process from 'node:process';

const host = process.env.DOCKER_HOST ?? '';
const socketPath = host.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock';

/** berth's containers log through json-file with these limits; the baseline containers get the same. */
export const berthLogConfig = { Type: 'json-file', Config: { 'max-size': '256m', 'max-file': '4' } };

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method,
        path,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 400) reject(new Error(`docker ${method} ${path}: ${status} ${text.trim()}`));
          else resolve(text ? JSON.parse(text) : undefined);
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export async function ping() {
  await new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/_ping' }, (res) => {
      res.resume();
      if (res.statusCode === 200) resolve();
      else reject(new Error(`docker /_ping answered ${res.statusCode}`));
    });
    req.on('error', () => reject(new Error(`no Docker engine at ${socketPath}: run scripts/setup-system.sh`)));
    req.end();
  });
}

/** Fails unless the engine answers and has `image`; `build` names the script that makes it. */
export async function requireImage(image, build = 'scripts/build-fixture-image.sh') {
  await ping();
  if (!(await imagePresent(image))) throw new Error(`${image} is missing: run ${build}`);
}

export async function imagePresent(image) {
  return call('GET', `/images/${encodeURIComponent(image)}/json`).then(
    () => true,
    () => false,
  );
}

/** Creates a container like `docker run` would (plus berth's log limits); returns its id. */
export async function createContainer({ image, cmd, labels = {} }) {
  const created = await call('POST', '/containers/create', {
    Image: image,
    Cmd: cmd,
    Labels: labels,
    Tty: false,
    HostConfig: { LogConfig: berthLogConfig },
  });
  return created.Id;
}

export const startContainer = (id) => call('POST', `/containers/${id}/start`);

export async function waitContainer(id) {
  return (await call('POST', `/containers/${id}/wait`)).StatusCode;
}

export async function removeContainer(id) {
  await call('DELETE', `/containers/${id}?force=1&v=1`).catch(() => {});
}

/** Removes every container carrying `label` (k=v); returns how many there were. */
export async function removeLabelled(label) {
  const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
  const found = await call('GET', `/containers/json?all=1&filters=${filters}`);
  await Promise.all(found.map((c) => removeContainer(c.Id)));
  return found.length;
}

/**
 * Follows a container's log from its first line (`docker logs -f`): demultiplexes the 8-byte framed stream and
 * calls onLine(text, stream) per complete line. Resolves when the engine ends the stream (the container exited).
 */
export function followLogs(id, onLine) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: `/containers/${id}/logs?follow=1&stdout=1&stderr=1` }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`docker logs ${id}: ${res.statusCode}`));
        return;
      }
      const partial = { 1: '', 2: '' };
      let pending = Buffer.alloc(0);
      res.on('data', (chunk) => {
        let buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
        let at = 0;
        while (buf.length - at >= 8) {
          const size = buf.readUInt32BE(at + 4);
          if (buf.length - at < 8 + size) break;
          const stream = buf[at] === 2 ? 2 : 1;
          const text = partial[stream] + buf.toString('utf8', at + 8, at + 8 + size);
          const lines = text.split('\n');
          partial[stream] = lines.pop();
          for (const line of lines) onLine(line, stream === 2 ? 'stderr' : 'stdout');
          at += 8 + size;
        }
        pending = at === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(at));
      });
      res.on('end', () => {
        for (const stream of [1, 2]) if (partial[stream]) onLine(partial[stream], stream === 2 ? 'stderr' : 'stdout');
        resolve();
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
