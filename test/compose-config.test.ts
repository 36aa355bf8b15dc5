// The production compose file stays honest: Docker Compose accepts it (it can't be brought up here: no registry).
import { execFileSync } from 'node:child_process';
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
});
