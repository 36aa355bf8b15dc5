// The production compose file stays honest: Docker Compose accepts it (it can't be brought up here: no registry).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

test('docker-compose config accepts docker-compose.yml, with the GPU reservation and the socket mount', () => {
  const root = resolve(__dirname, '..');
  const out = execFileSync('docker-compose', ['-f', resolve(root, 'docker-compose.yml'), 'config'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  expect(out).toMatch(/capabilities:\s*\n\s*- gpu/);
  expect(out).toContain('/var/run/docker.sock');
  expect(out).toMatch(/appendonly/);
  // Both of the worker's secrets are files, never values in the environment.
  expect(out).toContain('NGC_API_KEY_FILE: /run/secrets/ngc_api_key');
  expect(out).toContain('BERTH_API_TOKEN_FILE: /run/secrets/berth_worker_token');
  expect(out).not.toMatch(/NGC_API_KEY:|BERTH_API_TOKEN:/);
});

test('the service images install every workspace, and the worker image ships every package it imports', () => {
  const root = resolve(__dirname, '..');
  const workspaces = (JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { workspaces: string[] })
    .workspaces;
  for (const file of ['docker/api.Dockerfile', 'docker/worker.Dockerfile']) {
    const text = readFileSync(resolve(root, file), 'utf8');
    // npm ci in the build stage needs every workspace's package.json.
    for (const ws of workspaces) expect(text).toContain(`COPY ${ws}/package.json ${ws}/`);
  }
  const worker = readFileSync(resolve(root, 'docker/worker.Dockerfile'), 'utf8');
  const deps = Object.keys(
    (JSON.parse(readFileSync(resolve(root, 'apps/worker/package.json'), 'utf8')) as { dependencies: object })
      .dependencies,
  ).filter((d) => d.startsWith('@berth/'));
  for (const dep of deps) expect(worker).toContain(`/app/packages/${dep.slice('@berth/'.length)}/dist`);
});
