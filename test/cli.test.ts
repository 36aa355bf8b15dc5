// The built CLI (apps/cli/dist/main.js) run as a child process against a live stack: every command; downloads and log
// follows over connections cut (or stalled, then killed) on purpose resume exactly; `submit --follow` exits with the
// job's outcome; --json is parseable; errors are one line with the API's code.
import type { Artifact, Dataset, JobRecord, Pipeline, TokenInfo, User, WorkerInfo } from '@berth/contracts';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fixtureJob, startTestStack, type TestStack } from './support/stack.js';

const root = resolve(__dirname, '..');
const cli = join(root, 'apps/cli/dist/main.js');
const demo = join(root, 'payloads/bert/demo/data');
const work = mkdtempSync(join(tmpdir(), 'berth-cli-'));
const home = join(work, 'home');
const configFile = join(home, '.config/berth/config.json');

let stack: TestStack;
let alice: string;
let bob: string;
let admin: string;
beforeAll(async () => {
  // The test runs the CLI as users do: built.
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-b', 'apps/cli'], { cwd: root });
  stack = await startTestStack('cli');
  [alice, bob, admin] = [stack.alice.token, stack.bob.token, stack.admin.token];
}, 120_000);
afterAll(async () => stack.close());

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

type Env = Record<string, string | undefined>;

/** The environment a user of the CLI has: alice's url and token unless `env` says otherwise (undefined unsets). */
function cliEnv(env: Env): NodeJS.ProcessEnv {
  const all: Env = { PATH: process.env.PATH, HOME: home, BERTH_URL: stack.url, BERTH_TOKEN: alice, ...env };
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined));
}

function start(args: string[], env: Env = {}, cwd = work): ChildProcess & { result: Promise<Run> } {
  const child = spawn(process.execPath, [cli, ...args], { env: cliEnv(env), cwd });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const result = new Promise<Run>((done) => child.on('close', (code) => done({ code, stdout, stderr })));
  return Object.assign(child, { result });
}

const berth = (args: string[], env: Env = {}, cwd = work): Promise<Run> => start(args, env, cwd).result;

/** Stdout of a run that must succeed; its stderr otherwise. */
async function ok(args: string[], env: Env = {}, cwd = work): Promise<string> {
  const r = await berth(args, env, cwd);
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** The CLI on a pseudo-terminal (util-linux `script`), as a person at a terminal runs it; what the terminal showed. */
async function onTerminal(args: string[]): Promise<string> {
  const command = [process.execPath, cli, ...args].map((a) => `'${a}'`).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], { env: cliEnv({}), cwd: work });
  let shown = '';
  child.stdout.on('data', (d: Buffer) => (shown += d.toString()));
  const code = await new Promise((done) => child.on('close', done));
  if (code !== 0) throw new Error(`berth ${args.join(' ')} exited ${code}: ${shown}`);
  return shown;
}

async function json<T>(args: string[], env: Env = {}): Promise<T> {
  return JSON.parse(await ok([...args, '--json'], env)) as T;
}

/** A failed run: exit 1 and exactly one stderr line `berth: CODE: …`. */
async function fails(args: string[], code: string, env: Env = {}): Promise<string> {
  const r = await berth(args, env);
  expect({ code: r.code, lines: r.stderr.split('\n').length, stderr: r.stderr }).toEqual({
    code: 1,
    lines: 2,
    stderr: expect.stringMatching(new RegExp(`^berth: ${code}: .+\n$`)),
  });
  return r.stderr;
}

async function submit(command: string, ...flags: string[]): Promise<string> {
  const id = (await ok(['submit', ...fixtureFlags(command), ...flags])).trim();
  expect(id).toMatch(/^job_[a-z2-7]{20}$/);
  return id;
}

const fixtureFlags = (command: string) => [
  '--manifest',
  'custom',
  '--param',
  'image=berth/fixture:dev',
  '--param',
  `command=${JSON.stringify(['sh', '-c', command])}`,
  '--gpus',
  '0',
];

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const ended = (id: string) =>
  waitFor(`${id} to end`, async () => {
    const job = await json<JobRecord>(['show', id]);
    return ['succeeded', 'failed', 'cancelled'].includes(job.state) ? job : undefined;
  });

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Fault {
  /** Which requests (matched against the request head). */
  match: RegExp;
  /** Bytes of the answer passed on before the fault. */
  after: number;
  /** cut: close the connection; stall: stop passing the answer on (and keep the connection open). */
  action: 'cut' | 'stall';
  /** How many matching requests get it. */
  times: number;
}

/**
 * A TCP proxy in front of the API, standing in for a bad network: it passes bytes through unchanged, records every
 * request head, and cuts or stalls the answers to chosen requests after some bytes.
 */
class FaultyProxy {
  readonly heads: string[] = [];
  fault: Fault | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  constructor(private readonly target: number) {
    this.server = createServer((client) => this.relay(client));
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  headsMatching(re: RegExp): string[] {
    return this.heads.filter((h) => re.test(h));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }

  private relay(client: Socket): void {
    const upstream = connect(this.target, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => {});
      // The API closing cleanly is passed on as an end, after what is still queued for the client (an API that closes
      // after a download's last byte must not lose its tail here); anything else tears both down.
      s.on('close', (hadError) => {
        this.sockets.delete(s);
        if (s === upstream && !hadError) client.end();
        else {
          client.destroy();
          upstream.destroy();
        }
      });
    }
    let fault: Fault | undefined;
    let passed = 0;
    client.on('data', (d: Buffer) => {
      const text = d.toString('latin1');
      if (/^(GET|HEAD|POST|PUT|DELETE|PATCH) /.test(text)) {
        const head = text.split('\r\n\r\n')[0]!;
        this.heads.push(head);
        fault = this.fault && this.fault.times > 0 && this.fault.match.test(head) ? this.fault : undefined;
        if (fault) fault.times--;
        passed = 0;
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      const room = fault ? fault.after - passed : Infinity;
      client.write(d.subarray(0, Math.max(0, room)));
      passed += d.length;
      if (!fault || room > d.length) return;
      if (fault.action === 'cut') client.destroy();
      else upstream.pause();
    });
  }
}

let proxy: FaultyProxy;
let proxied: string;
beforeAll(async () => {
  proxy = new FaultyProxy(Number(new URL(stack.url).port));
  proxied = await proxy.listen();
});
afterAll(async () => proxy.close());

describe('config and login', () => {
  const noEnv = { BERTH_URL: undefined, BERTH_TOKEN: undefined };

  test('without a url the CLI says how to set one', async () => {
    await fails(['ls'], 'NOT_CONFIGURED', noEnv);
  });

  test('config set writes url and token into a 0600 file; BERTH_TOKEN and --token override it, in that order', async () => {
    expect(await ok(['config', 'set', 'url', `${stack.url}/`], noEnv)).toContain(configFile);
    await ok(['config', 'set', 'token', 'berth_not-a-real-token'], noEnv);
    expect(JSON.parse(readFileSync(configFile, 'utf8'))).toEqual({ url: stack.url, token: 'berth_not-a-real-token' });
    expect(statSync(configFile).mode & 0o777).toBe(0o600);
    await fails(['ls'], 'UNAUTHENTICATED', noEnv);
    await ok(['ls'], { BERTH_URL: undefined, BERTH_TOKEN: alice });
    await fails(['ls'], 'UNAUTHENTICATED', { BERTH_URL: undefined, BERTH_TOKEN: 'berth_wrong' });
    await ok(['ls', '--token', alice], { BERTH_URL: undefined, BERTH_TOKEN: 'berth_wrong' });
    await fails(['config', 'set', 'url', 'ftp://x'], 'INVALID_URL', noEnv);
    await fails(['config', 'set', 'colour', 'blue'], 'USAGE', noEnv);
  });

  test('login checks the token with GET /v1/me before it saves anything', async () => {
    const before = readFileSync(configFile, 'utf8');
    const refused = await fails(['login', '--url', stack.url, '--token', 'berth_wrong'], 'UNAUTHENTICATED', noEnv);
    expect(refused).toContain('refused this token (mistyped, revoked or expired): nothing was saved');
    expect(readFileSync(configFile, 'utf8')).toBe(before);

    expect(await ok(['login', '--url', stack.url, '--token', alice], noEnv)).toBe(
      `logged in to ${stack.url} as alice (member)\n`,
    );
    expect(JSON.parse(readFileSync(configFile, 'utf8'))).toEqual({ url: stack.url, token: alice });
    expect(statSync(configFile).mode & 0o777).toBe(0o600);
    const me = await json<{ user: { name: string; role: string } }>(
      ['login', '--url', stack.url, '--token', bob],
      noEnv,
    );
    expect(me.user).toMatchObject({ name: 'bob', role: 'member' });
    // Saved: the next commands need neither flags nor env.
    await ok(['login', '--url', stack.url, '--token', alice], noEnv);
    expect(JSON.parse(await ok(['ls', '--json'], noEnv))).toHaveProperty('jobs');
  });
});

describe('jobs', () => {
  let failed: string;

  test('submit from flags: params parsed as JSON when they parse, labels, GPUs; show prints it back', async () => {
    failed = await submit('echo out; exit 3', '--label', 'team=nlp', '--label', 'run=7');
    const job = await json<JobRecord>(['show', failed]);
    expect(job.spec).toMatchObject({
      manifest: 'custom',
      params: { image: 'berth/fixture:dev', command: ['sh', '-c', 'echo out; exit 3'] },
      resources: { gpus: 0 },
      labels: { team: 'nlp', run: '7' },
    });
    await ended(failed);
    const shown = await ok(['show', failed]);
    expect(shown).toMatch(new RegExp(`^id: +${failed}$`, 'm'));
    expect(shown).toMatch(/^state: +failed: EXIT_NONZERO, exit code 3$/m);
    expect(shown).toMatch(/^labels: +team=nlp, run=7$/m);
    expect(shown).toMatch(/^ATTEMPT +WORKER +GPUS .*\n1 +\S+ +0 .* failed +EXIT_NONZERO +3$/m);
  });

  test('submit -f takes YAML or JSON; flags override the file', async () => {
    const yamlFile = join(work, 'spec.yaml');
    writeFileSync(
      yamlFile,
      [
        'manifest: custom',
        'params:',
        '  image: berth/fixture:dev',
        '  command: [sh, -c, "echo from-yaml"]',
        'resources: { gpus: 0 }',
        'labels: { source: file, team: old }',
        'maxRuntime: 60',
      ].join('\n'),
    );
    const id = (await ok(['submit', '-f', yamlFile, '--label', 'team=new'])).trim();
    expect((await json<JobRecord>(['show', id])).spec).toMatchObject({
      params: { command: ['sh', '-c', 'echo from-yaml'] },
      labels: { source: 'file', team: 'new' },
      maxRuntime: 60,
    });
    const jsonFile = join(work, 'spec.json');
    writeFileSync(jsonFile, JSON.stringify(fixtureJob(['echo', 'from-json'], { resources: { gpus: 0 } })));
    const other = (await ok(['submit', '-f', jsonFile])).trim();
    expect((await json<JobRecord>(['show', other])).spec.params.command).toEqual(['echo', 'from-json']);
    writeFileSync(join(work, 'list.yaml'), '- a\n- b\n');
    await fails(['submit', '-f', join(work, 'list.yaml')], 'SPEC_FILE_INVALID');
    await fails(['submit', '--label', 'novalue'], 'INVALID_ARGUMENT');
  });

  test('--idempotency-key: the same spec gives the same job; another spec under the key is refused', async () => {
    const key = `cli-${Date.now()}`;
    const first = await submit('echo once', '--idempotency-key', key);
    expect(await submit('echo once', '--idempotency-key', key)).toBe(first);
    await fails(['submit', ...fixtureFlags('echo other'), '--idempotency-key', key], 'IDEMPOTENCY_KEY_REUSED');
  });

  test('submit --follow streams the log and exits 0 when the job succeeds, 1 when it fails', async () => {
    const good = await berth([
      'submit',
      '--follow',
      ...fixtureFlags('for i in 1 2 3; do echo step $i; sleep 0.5; done'),
    ]);
    expect(good).toMatchObject({ code: 0, stdout: 'step 1\nstep 2\nstep 3\n' });
    // State changes come on stderr as they happen, the worker named; the outcome line last.
    expect(good.stderr).toMatch(
      new RegExp(
        '^job_\\w+ submitted; following its log\n(\\[berth\\] .+\n)*' +
          `\\[berth\\] running on ${stack.workerId} \\(attempt 1\\)\n(\\[berth\\] uploading\n)?job_\\w+ succeeded\n$`,
      ),
    );

    const bad = await berth(['submit', '--follow', ...fixtureFlags('echo dying; exit 7')]);
    expect(bad).toMatchObject({ code: 1, stdout: 'dying\n' });
    expect(bad.stderr).toMatch(/job_\w+ failed: EXIT_NONZERO, exit code 7\n$/);
  });

  test('submit --init-from mounts the source job model folder at /init, or the artifact named after the colon', async () => {
    const source = await berth([
      'submit',
      '--follow',
      ...fixtureFlags('mkdir -p /results/model && echo weights > /results/model/w.bin && echo hi > /results/notes.txt'),
    ]);
    expect(source.code).toBe(0);
    const sourceId = /^(job_\w+) submitted/.exec(source.stderr)![1]!;
    const fromModel = await berth([
      'submit',
      '--follow',
      ...fixtureFlags('ls /init; cat /init/w.bin'),
      '--init-from',
      sourceId,
    ]);
    expect(fromModel).toMatchObject({ code: 0, stdout: 'w.bin\nweights\n' });
    const fromFile = await berth([
      'submit',
      '--follow',
      ...fixtureFlags('cat /init/notes.txt'),
      '--init-from',
      `${sourceId}:notes.txt`,
    ]);
    expect(fromFile).toMatchObject({ code: 0, stdout: 'hi\n' });
    await fails(['submit', ...fixtureFlags('true'), '--init-from', 'model'], 'INVALID_ARGUMENT');
    await fails(['submit', ...fixtureFlags('true'), '--init-from', `${sourceId}:nope`], 'VALIDATION_FAILED');
  });

  test('submit --follow exits 2 when the job is cancelled; cancel of an ended job is refused', async () => {
    const follow = start(['submit', '--follow', ...fixtureFlags('echo started; sleep 60')]);
    let stderr = '';
    follow.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const id = await waitFor('the job id', async () => /(job_[a-z2-7]{20}) submitted/.exec(stderr)?.[1]);
    await waitFor('the job to run', async () =>
      (await json<JobRecord>(['show', id])).state === 'running' ? true : undefined,
    );
    // Ctrl-C on a second follower detaches it and says how to come back or stop the job, which runs on.
    const watcher = start(['logs', id, '-f']);
    let seen = '';
    watcher.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    await waitFor('the log', async () => (seen.includes('started') ? true : undefined));
    watcher.kill('SIGINT');
    const detached = await watcher.result;
    expect(detached.code).toBe(130);
    expect(detached.stderr).toContain(`detached from ${id}; it keeps running. Follow it again: berth logs -f ${id}`);
    expect(detached.stderr).toContain(`stop it: berth cancel ${id}`);
    expect((await json<JobRecord>(['show', id])).state).toBe('running');
    expect(await ok(['cancel', id])).toBe(`${id} stopping\n`);
    const r = await follow.result;
    expect(r).toMatchObject({ code: 2, stdout: 'started\n' });
    expect(r.stderr).toMatch(new RegExp(`\n${id} cancelled\\b.*\n$`));
    await fails(['cancel', id], 'JOB_ALREADY_FINISHED');
  });

  test('cancel --json prints the job; it ends cancelled', async () => {
    const id = await submit('sleep 60');
    expect((await json<JobRecord>(['cancel', id])).id).toBe(id);
    expect((await ended(id)).state).toBe('cancelled');
  });

  test('ls: newest first, a state filter, --limit, and pages with --cursor', async () => {
    const page1 = await json<{ jobs: JobRecord[]; next: string | null }>(['ls', '--limit', '2']);
    expect(page1.jobs).toHaveLength(2);
    expect(page1.next).toEqual(expect.any(String));
    const page2 = await json<{ jobs: JobRecord[]; next: string | null }>([
      'ls',
      '--limit',
      '2',
      '--cursor',
      page1.next!,
    ]);
    expect(page2.jobs).toHaveLength(2);
    const ids = [...page1.jobs, ...page2.jobs].map((j) => j.id);
    expect(new Set(ids).size).toBe(4);
    const all = await json<{ jobs: JobRecord[] }>(['ls', '--limit', '200']);
    expect(all.jobs.slice(0, 4).map((j) => j.id)).toEqual(ids);

    const failedOnly = await json<{ jobs: JobRecord[] }>(['ls', '--state', 'failed']);
    expect(failedOnly.jobs.length).toBeGreaterThanOrEqual(2);
    expect(failedOnly.jobs.every((j) => j.state === 'failed')).toBe(true);

    const table = await berth(['ls', '--limit', '1']);
    const [header, row, extra] = table.stdout.split('\n');
    expect(header).toMatch(/^ID +NAME +STATE +MANIFEST +GPUS +CREATED +WHY$/);
    // A run's name and notes: given at submit, in the list and on show.
    const named = await submit('true', '--name', 'squad lr 3e-5', '--notes', 'after the tokenizer fix');
    expect(await ok(['ls', '--limit', '1'])).toMatch(new RegExp(`^${named} +squad lr 3e-5 +\\w+ +custom `, 'm'));
    expect(await ok(['show', named])).toMatch(/^name: +squad lr 3e-5\nnotes: +after the tokenizer fix\n/m);
    // WHY says what the state does not: a failure's reason and exit code, never the state again.
    const failedRow = (await ok(['ls', '--state', 'failed', '--limit', '1'])).split('\n')[1]!;
    expect(failedRow).toMatch(/ failed +custom .* EXIT_NONZERO, exit code \d+$/);
    expect(failedRow).not.toMatch(/failed: /);
    expect(row).toMatch(
      new RegExp(`^${page1.jobs[0]!.id} +\\w+ +custom +0 +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d`),
    );
    expect(extra).toBe('');
    expect(table.stderr).toMatch(/^more: berth ls --cursor \w+\n$/);
    await fails(['ls', '--state', 'sleeping'], 'VALIDATION_FAILED');
  });

  test('retry submits the same spec again, labelled with the job it retries', async () => {
    const id = await submit('exit 1', '--label', 'attempt=first');
    await ended(id);
    const retried = (await ok(['retry', id])).trim();
    expect(retried).not.toBe(id);
    const job = await json<JobRecord>(['show', retried]);
    expect(job.spec.params.command).toEqual(['sh', '-c', 'exit 1']);
    expect(job.spec.labels).toMatchObject({ attempt: 'first', 'berth.retry-of': id });
  });

  test("another member's job does not exist for you", async () => {
    const id = await submit('echo private');
    expect(await fails(['show', id], 'JOB_NOT_FOUND', { BERTH_TOKEN: bob })).toBe(
      `berth: JOB_NOT_FOUND: no job ${id}\n`,
    );
    await fails(['logs', id], 'JOB_NOT_FOUND', { BERTH_TOKEN: bob });
    await fails(['cancel', id], 'JOB_NOT_FOUND', { BERTH_TOKEN: bob });
  });
});

describe('logs and metrics', () => {
  let id: string;
  beforeAll(async () => {
    id = await submit('seq 1 12');
    expect((await ended(id)).state).toBe('succeeded');
  });

  const numbers = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => `${from + i}\n`).join('');

  test('logs prints the lines so far; --tail the last N; --attempt one attempt; -f of an ended job ends', async () => {
    expect(await ok(['logs', id])).toBe(numbers(1, 12));
    expect(await ok(['logs', id, '--tail', '3'])).toBe(numbers(10, 12));
    expect(await ok(['logs', id, '--attempt', '1'])).toBe(numbers(1, 12));
    expect(await ok(['logs', id, '--attempt', '2'])).toBe('');
    expect(await ok(['logs', id, '-f'])).toBe(numbers(1, 12));
    expect(await ok(['logs', id, '-f', '--tail', '2'])).toBe(numbers(11, 12));
    expect((await berth(['logs', id, '-f'])).stderr).toBe(`${id} succeeded\n`);
  });

  test('logs -f follows a running job and, when the connection drops (twice), resumes with Last-Event-ID: no line lost or repeated', async () => {
    const running = await submit('for i in $(seq 1 40); do echo line-$i; sleep 0.05; done');
    proxy.fault = {
      match: new RegExp(`GET /v1/jobs/${running}/logs\\?follow=true`),
      after: 700,
      action: 'cut',
      times: 2,
    };
    const out = await ok(['logs', running, '-f'], { BERTH_URL: proxied });
    expect(out).toBe(Array.from({ length: 40 }, (_, i) => `line-${i + 1}\n`).join(''));
    const heads = proxy.headsMatching(new RegExp(`/v1/jobs/${running}/logs`));
    expect(heads).toHaveLength(3);
    expect(heads[0]).not.toMatch(/last-event-id/i);
    const resumedFrom = heads.slice(1).map((h) => /last-event-id: (\S+)/i.exec(h)?.[1]);
    expect(resumedFrom).toEqual([expect.stringMatching(/^\d+-\d+$/), expect.stringMatching(/^\d+-\d+$/)]);
  });

  test('logs renders DLLogger records for reading (--raw shows them as printed); -f ends with the outcome', async () => {
    const dlll = (o: object) => `echo 'DLLL ${JSON.stringify({ timestamp: '1', datetime: 'x', ...o })}'`;
    const job = await submit(
      [
        dlll({ elapsedtime: '0', type: 'METADATA', metric: 'e2e_train_time', metadata: { unit: 's' } }),
        dlll({ elapsedtime: '0', type: 'LOG', step: 'PARAMETER', data: { total_steps: 4 } }),
        'echo starting',
        dlll({ elapsedtime: '1', type: 'LOG', step: [0, 1], data: { step_loss: 3.5 } }),
        dlll({ elapsedtime: '3', type: 'LOG', step: [0, 2], data: { step_loss: 2.25 } }),
        dlll({ elapsedtime: '4', type: 'LOG', step: [], data: { e2e_train_time: 4.5 } }),
        // (after a pause: lines of stdout and stderr are stored in the order they reach the worker)
        'sleep 0.5',
        'echo "trainer: error: out of data" >&2',
        'exit 4',
      ].join('; '),
    );
    expect((await ended(job)).state).toBe('failed');
    expect(await ok(['logs', job])).toBe(
      'starting\nstep 1/4  loss 3.5\nstep 2/4  loss 2.25  ETA 4s\nresults:\n  train time (end to end)  4.5 s\ntrainer: error: out of data\n',
    );
    const raw = await ok(['logs', job, '--raw']);
    expect(raw.split('\n').filter((l) => l.startsWith('DLLL {'))).toHaveLength(5);
    // Following it to its end: the outcome, the why, and the exit code of a failure.
    const followed = await berth(['logs', job, '-f']);
    expect(followed.code).toBe(1);
    expect(followed.stderr).toBe(`${job} failed: EXIT_NONZERO, exit code 4\n  trainer: error: out of data\n`);
  });

  test('metrics: the latest value of each series and the summary; --json has the series', async () => {
    const dlll = (o: object) =>
      `echo 'DLLL ${JSON.stringify({ timestamp: '1', datetime: 'x', elapsedtime: '0', ...o })}'`;
    const job = await submit(
      [
        dlll({ type: 'LOG', step: 'PARAMETER', data: { batch_size: 8, lr: 0.001 } }),
        dlll({ type: 'LOG', step: [0, 1], data: { average_loss: 3.5 } }),
        dlll({ type: 'LOG', step: [0, 2], data: { average_loss: 2.25 } }),
        dlll({ type: 'LOG', step: [], data: { F1: 74.125, final_loss: 2.25 } }),
      ].join('; '),
    );
    expect((await ended(job)).state).toBe('succeeded');
    const run = await berth(['metrics', job]);
    const table = run.stdout;
    // The run's settings are not metrics: only counted.
    expect(table).not.toMatch(/^(batch_size|lr) /m);
    expect(run.stderr).toBe(`(and 2 parameters the run printed: berth metrics ${job} --json)\n`);
    expect(table).toMatch(/^METRIC +LATEST +UNIT +KIND +POINTS$/m);
    expect(table).toMatch(/^average_loss +2\.25 +step +2$/m);
    expect(table).toMatch(/^SUMMARY +VALUE\n(.*\n)*F1 +74\.125$/m);
    const m = await json<{ latest: Record<string, number>; summary: Record<string, number> }>(['metrics', job]);
    expect(m.latest.average_loss).toBe(2.25);
    expect(m.summary).toEqual({ F1: 74.125, final_loss: 2.25 });
    expect((await berth(['metrics', id])).stderr).toBe(`${id} has reported no metrics\n`);
  });
});

describe('artifacts', () => {
  let id: string;
  let big: Buffer;
  const bigPath = () => join(stack.dataDir, 'results', id, 'a1', 'big.bin');
  beforeAll(async () => {
    id = await submit(
      'head -c 16777216 /dev/urandom > /results/big.bin; head -c 4096 /dev/urandom > /results/small.bin; ' +
        'mkdir /results/dir; echo a > /results/dir/a.txt; echo b > /results/dir/b.txt',
    );
    expect((await ended(id)).state).toBe('succeeded');
    big = readFileSync(bigPath());
  });

  test('artifacts ls: a table, or --json', async () => {
    const { artifacts } = await json<{ artifacts: Artifact[] }>(['artifacts', 'ls', id]);
    expect(artifacts.find((a) => a.path === 'big.bin')).toMatchObject({ size: big.length, sha256: sha(big) });
    const table = await ok(['artifacts', 'ls', id]);
    expect(table).toMatch(/^PATH +SIZE +KIND +ATTEMPT +CREATED +SHA256$/m);
    expect(table).toMatch(new RegExp(`^big\\.bin +16\\.0 MiB +other +1 +.* ${sha(big)}$`, 'm'));
    expect(table).toMatch(/^dir\/a\.txt +2 B /m);
  });

  test('pull writes the file named by the path, checked against its sha256', async () => {
    const dir = mkdtempSync(join(work, 'pull-'));
    const r = await berth(['artifacts', 'pull', id, 'big.bin'], {}, dir);
    expect(r).toMatchObject({ code: 0, stdout: 'big.bin\n', stderr: '' });
    expect(sha(readFileSync(join(dir, 'big.bin')))).toBe(sha(big));
    expect(existsSync(join(dir, 'big.bin.part'))).toBe(false);
    const got = await json<{ path: string; size: number; sha256: string }>([
      'artifacts',
      'pull',
      id,
      'small.bin',
      '-o',
      join(dir, 'small'),
    ]);
    expect(got).toEqual({ path: join(dir, 'small'), size: 4096, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  test('a download cut midway (three times) continues with Range and If-Range in the same run', async () => {
    const out = join(mkdtempSync(join(work, 'cut-')), 'big.bin');
    proxy.fault = { match: /GET \/v1\/jobs\/.*\/artifacts\/big\.bin/, after: 3_000_000, action: 'cut', times: 3 };
    expect(await ok(['artifacts', 'pull', id, 'big.bin', '-o', out], { BERTH_URL: proxied })).toBe(`${out}\n`);
    expect(sha(readFileSync(out))).toBe(sha(big));
    const heads = proxy.headsMatching(/artifacts\/big\.bin/).slice(-4);
    expect(heads[0]).not.toMatch(/range/i);
    for (const head of heads.slice(1)) {
      expect(head).toMatch(/^range: bytes=\d+-$/im);
      expect(head).toMatch(new RegExp(`^if-range: "${sha(big)}"$`, 'im'));
    }
    const offsets = heads.slice(1).map((h) => Number(/range: bytes=(\d+)-/i.exec(h)![1]));
    expect(offsets[0]).toBeGreaterThan(2_000_000);
    expect([...offsets].sort((a, b) => a - b)).toEqual(offsets);
    expect(existsSync(`${out}.part`) || existsSync(`${out}.part.etag`)).toBe(false);
  });

  test('a pull killed midway leaves a .part that the next run continues from where it stopped', async () => {
    const out = join(mkdtempSync(join(work, 'kill-')), 'big.bin');
    proxy.fault = { match: /GET \/v1\/jobs\/.*\/artifacts\/big\.bin/, after: 5_000_000, action: 'stall', times: 1 };
    const child = start(['artifacts', 'pull', id, 'big.bin', '-o', out], { BERTH_URL: proxied });
    const size = () => (existsSync(`${out}.part`) ? statSync(`${out}.part`).size : 0);
    await waitFor('the .part to stop growing', async () => {
      const before = size();
      await new Promise((r) => setTimeout(r, 300));
      return before > 4_000_000 && size() === before ? true : undefined;
    });
    child.kill('SIGKILL');
    expect((await child.result).code).toBeNull();
    const kept = size();
    expect(kept).toBeLessThan(big.length);
    expect(sha(readFileSync(`${out}.part`))).toBe(sha(big.subarray(0, kept)));

    expect(await ok(['artifacts', 'pull', id, 'big.bin', '-o', out], { BERTH_URL: proxied })).toBe(`${out}\n`);
    expect(proxy.headsMatching(/artifacts\/big\.bin/).at(-1)).toMatch(new RegExp(`^range: bytes=${kept}-$`, 'im'));
    expect(sha(readFileSync(out))).toBe(sha(big));
  });

  test('a truncated .part is continued from its length; one whose ETag no longer matches is replaced whole', async () => {
    const dir = mkdtempSync(join(work, 'stale-'));
    const out = join(dir, 'big.bin');
    writeFileSync(`${out}.part`, big.subarray(0, 1_234_567));
    writeFileSync(`${out}.part.etag`, `"${sha(big)}"`);
    await ok(['artifacts', 'pull', id, 'big.bin', '-o', out], { BERTH_URL: proxied });
    expect(proxy.headsMatching(/artifacts\/big\.bin/).at(-1)).toMatch(/^range: bytes=1234567-$/im);
    expect(sha(readFileSync(out))).toBe(sha(big));

    // A .part of some other version of the file: If-Range fails, the API sends all of it.
    writeFileSync(`${out}.part`, Buffer.alloc(1000, 7));
    writeFileSync(`${out}.part.etag`, `"${'0'.repeat(64)}"`);
    await ok(['artifacts', 'pull', id, 'big.bin', '-o', out]);
    expect(sha(readFileSync(out))).toBe(sha(big));
  });

  test('bytes that do not match the sha256 are refused and removed', async () => {
    const small = (await json<{ artifacts: Artifact[] }>(['artifacts', 'ls', id])).artifacts.find(
      (a) => a.path === 'small.bin',
    )!;
    // The stored blob is damaged on the API's disk (same size): what arrives no longer hashes to the index's sha256.
    const blob = join(tmpdir(), 'berth-test-api', stack.prefix, 'artifacts', id, small.sha256);
    const damaged = readFileSync(blob);
    damaged[100] = damaged[100]! ^ 0xff;
    writeFileSync(blob, damaged);
    const out = join(mkdtempSync(join(work, 'bad-')), 'small.bin');
    const err = await fails(['artifacts', 'pull', id, 'small.bin', '-o', out], 'SHA256_MISMATCH');
    expect(err).toContain(`the bytes hash to ${sha(damaged)}, the API says ${small.sha256}`);
    expect([existsSync(out), existsSync(`${out}.part`), existsSync(`${out}.part.etag`)]).toEqual([false, false, false]);
  });

  test('a folder comes as a tar; a missing path is an error with its code', async () => {
    const out = join(work, 'dir.tar');
    await ok(['artifacts', 'pull', id, 'dir', '-o', out]);
    expect(execFileSync('tar', ['-tf', out]).toString().split('\n').filter(Boolean).sort()).toEqual([
      'dir/a.txt',
      'dir/b.txt',
    ]);
    // Without -o it is named as the tar it is, and the CLI says how to unpack it.
    const named = await berth(['artifacts', 'pull', id, 'dir'], {}, work);
    expect(named).toMatchObject({ code: 0, stdout: 'dir.tar\n' });
    expect(named.stderr).toBe('dir.tar is a tar of the folder dir/: unpack it with tar -xf dir.tar\n');
    expect(existsSync(join(work, 'dir.tar'))).toBe(true);
    await fails(['artifacts', 'pull', id, 'nothing.bin'], 'ARTIFACT_NOT_FOUND');
    expect(existsSync(join(work, 'nothing.bin.part'))).toBe(false);
  });

  test('on a terminal, pull and push draw a progress bar on stderr', async () => {
    const out = join(work, 'tty-big.bin');
    const tty = await onTerminal(['artifacts', 'pull', id, 'big.bin', '-o', out]);
    expect(tty).toMatch(/tty-big\.bin \[#{30}\] 100% 16\.0 MiB \/ 16\.0 MiB/);
    expect(sha(readFileSync(out))).toBe(sha(big));
  });
});

describe('datasets and pipelines', () => {
  let corpus: string;
  let squad: string;

  test('datasets push uploads a file or an archive and prints its id; ls lists; a bad file is refused with the report', async () => {
    corpus = (await ok(['datasets', 'push', join(demo, 'corpus.txt'), '--format', 'corpus'])).trim();
    expect(corpus).toMatch(/^ds_[a-z2-7]{20}$/);
    const archive = join(work, 'squad.tar');
    execFileSync('tar', ['-cf', archive, '-C', demo, 'train.json', 'dev.json']);
    const pushed = await json<Dataset>(['datasets', 'push', archive, '--format', 'squad', '--name', 'demo squad']);
    squad = pushed.id;
    expect(pushed).toMatchObject({ name: 'demo squad', format: 'squad', files: 2 });

    const { datasets } = await json<{ datasets: Dataset[] }>(['datasets', 'ls']);
    expect(datasets.map((d) => d.id)).toEqual(expect.arrayContaining([corpus, squad]));
    expect(datasets.find((d) => d.id === corpus)).toMatchObject({ name: 'corpus.txt', format: 'corpus' });
    expect(await ok(['datasets', 'ls'])).toMatch(new RegExp(`^${squad} +demo squad +squad +\\d+ +2 `, 'm'));

    writeFileSync(join(work, 'train.json'), '{"data": [');
    // The refusal names the file and line the API's report found, on the one error line.
    const refusal = await fails(['datasets', 'push', join(work, 'train.json'), '--format', 'squad'], 'DATASET_INVALID');
    expect(refusal).toMatch(/: train\.json line \d+: /);
    // A folder is packed and pushed as one dataset of its files.
    const folder = join(work, 'squad-folder');
    mkdirSync(folder, { recursive: true });
    copyFileSync(join(demo, 'train.json'), join(folder, 'train.json'));
    copyFileSync(join(demo, 'dev.json'), join(folder, 'dev.json'));
    const fromFolder = await json<Dataset>(['datasets', 'push', folder, '--format', 'squad']);
    expect(fromFolder).toMatchObject({ name: 'squad-folder', format: 'squad', files: 2 });
    mkdirSync(join(work, 'empty-folder'), { recursive: true });
    await fails(['datasets', 'push', join(work, 'empty-folder'), '--format', 'squad'], 'INVALID_ARGUMENT');
    expect(await onTerminal(['datasets', 'push', archive, '--format', 'squad'])).toMatch(/squad\.tar \[#{30}\] 100%/);
  });

  test('datasets rm deletes; a second rm says it is gone; others cannot see yours', async () => {
    const id = (await ok(['datasets', 'push', join(demo, 'dev.json'), '--format', 'squad'])).trim();
    await fails(['datasets', 'rm', id], 'DATASET_NOT_FOUND', { BERTH_TOKEN: bob });
    expect(await ok(['datasets', 'rm', id])).toBe(`deleted ${id}\n`);
    await fails(['datasets', 'rm', id], 'DATASET_NOT_FOUND');
  });

  test('pipelines run -f runs steps in order; show prints each step; --json parses', async () => {
    const file = join(work, 'pipeline.yaml');
    writeFileSync(
      file,
      [
        'name: two steps',
        'steps:',
        '  - name: first',
        '    manifest: custom',
        '    params: { image: berth/fixture:dev, command: [echo, one] }',
        '    resources: { gpus: 0 }',
        '  - name: second',
        '    manifest: custom',
        '    params: { image: berth/fixture:dev, command: [echo, two] }',
        '    resources: { gpus: 0 }',
        '    dependsOn: [first]',
      ].join('\n'),
    );
    const id = (await ok(['pipelines', 'run', '-f', file])).trim();
    expect(id).toMatch(/^pl_[a-z2-7]{20}$/);
    const done = await waitFor('the pipeline to end', async () => {
      const p = await json<Pipeline>(['pipelines', 'show', id]);
      return p.state === 'running' ? undefined : p;
    });
    expect(done).toMatchObject({ name: 'two steps', state: 'succeeded' });
    expect(done.steps.map((s) => [s.name, s.state])).toEqual([
      ['first', 'succeeded'],
      ['second', 'succeeded'],
    ]);
    const shown = await ok(['pipelines', 'show', id]);
    expect(shown).toMatch(new RegExp(`^${id} +two steps +succeeded$`, 'm'));
    expect(shown).toMatch(new RegExp(`^second +succeeded +${done.steps[1]!.job}$`, 'm'));
    expect(await ok(['logs', done.steps[1]!.job!])).toBe('two\n');
  });

  test('pipelines run domain-adapt takes --param; cancel stops every step', async () => {
    const id = (
      await ok([
        'pipelines',
        'run',
        'domain-adapt',
        '--name',
        'adapt',
        '--param',
        `corpus=${corpus}`,
        '--param',
        `squad=${squad}`,
        '--param',
        'gpus=0',
        '--param',
        'modelConfig=tiny',
      ])
    ).trim();
    const p = await json<Pipeline>(['pipelines', 'show', id]);
    expect(p.definition.map((s) => s.name)).toHaveLength(5);
    expect(p.definition[0]!.inputs).toMatchObject({ dataset: corpus });
    const cancelled = await ok(['pipelines', 'cancel', id]);
    expect(cancelled).toMatch(new RegExp(`^${id} +adapt +cancelled$`, 'm'));
    await fails(['pipelines', 'run', 'domain-adapt', '--param', 'corpus=nope'], 'VALIDATION_FAILED');
    await fails(['pipelines', 'show', id], 'PIPELINE_NOT_FOUND', { BERTH_TOKEN: bob });
  });
});

describe('workers and tokens', () => {
  test('workers: a table, or --json', async () => {
    const { workers } = await json<{ workers: WorkerInfo[] }>(['workers'], { BERTH_TOKEN: admin });
    expect(workers.find((w) => w.id === stack.workerId)).toMatchObject({ status: 'live' });
    expect(await ok(['workers'], { BERTH_TOKEN: admin })).toMatch(
      new RegExp(`^${stack.workerId} +\\S+ +live +whole-host +\\d+/\\d+ `, 'm'),
    );
  });

  test('tokens create prints the secret once; it works until revoked', async () => {
    const made = await berth(['tokens', 'create', '--name', 'ci', '--expires-in-days', '7']);
    expect(made.code).toBe(0);
    const secret = made.stdout.trim();
    expect(secret).toMatch(/^berth_[A-Za-z0-9_-]{43}$/);
    const tokenId = /^(tok_[a-z2-7]{20}) \(ci\)/.exec(made.stderr)?.[1];
    expect(tokenId).toBeDefined();

    const { tokens } = await json<{ tokens: TokenInfo[] }>(['tokens', 'ls']);
    expect(tokens.find((t) => t.id === tokenId)).toMatchObject({ name: 'ci', expiresAt: expect.any(String) });
    expect(await ok(['tokens', 'ls'])).toMatch(new RegExp(`^${tokenId} +ci +usr_\\w+ `, 'm'));
    await ok(['ls'], { BERTH_TOKEN: secret });
    expect(await ok(['tokens', 'revoke', tokenId!])).toBe(`revoked ${tokenId}\n`);
    await fails(['ls'], 'UNAUTHENTICATED', { BERTH_TOKEN: secret });
    await fails(['tokens', 'revoke', tokenId!], 'TOKEN_NOT_FOUND');
  });
});

describe('users', () => {
  test('an admin adds a worker account and gives it a token; members may not manage users', async () => {
    const id = (await ok(['users', 'create', 'worker-cli', '--role', 'worker'], { BERTH_TOKEN: admin })).trim();
    expect(id).toMatch(/^usr_[a-z2-7]{20}$/);
    expect(await ok(['users', 'ls'], { BERTH_TOKEN: admin })).toMatch(
      new RegExp(`^${id} +worker-cli +worker +- +- `, 'm'),
    );
    const secret = (await ok(['tokens', 'create', '--name', 'host', '--user', id], { BERTH_TOKEN: admin })).trim();
    expect(secret).toMatch(/^berth_[A-Za-z0-9_-]{43}$/);
    // A worker account cannot list jobs: it only uploads artifacts and fetches inputs.
    await fails(['ls'], 'FORBIDDEN', { BERTH_TOKEN: secret });
    const changed = await json<User>(['users', 'set', id, '--gpus', '4', '--queued-jobs', '2'], { BERTH_TOKEN: admin });
    expect(changed.quotas).toEqual({ queuedJobs: 2, gpus: 4 });
    await fails(['users', 'create', 'worker-cli'], 'FORBIDDEN');
    await fails(['users', 'create', 'worker-cli'], 'USER_EXISTS', { BERTH_TOKEN: admin });
  });
});

describe('errors', () => {
  test('an unknown job, a spec the API refuses, no token, a usage mistake: one line each, exit 1', async () => {
    expect(await fails(['show', 'job_aaaaaaaaaaaaaaaaaaaa'], 'JOB_NOT_FOUND')).toBe(
      'berth: JOB_NOT_FOUND: no job job_aaaaaaaaaaaaaaaaaaaa\n',
    );
    const invalid = await fails(['submit', '--manifest', 'nope'], 'VALIDATION_FAILED');
    expect(invalid).toContain('manifest: unknown manifest');
    await fails(['ls'], 'UNAUTHENTICATED', { BERTH_TOKEN: undefined, HOME: join(work, 'elsewhere') });
    expect(await fails(['logs'], 'USAGE')).toBe("berth: USAGE: missing required argument 'job'\n");
    await fails(['logs', 'x', '--tail', '0'], 'INVALID_ARGUMENT');
  });

  test('an API that cannot be reached is named', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const err = await fails(['ls', '--url', `http://127.0.0.1:${port}`], 'UNREACHABLE');
    expect(err).toBe(`berth: UNREACHABLE: cannot reach http://127.0.0.1:${port}: ECONNREFUSED\n`);
  });
});
