import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { configInventory, detectGpus, NvidiaSmiFailedError, NvidiaSmiInventory } from './inventory.js';

// Real outputs captured on an H200; the real binary cannot run here, so a script replays them.
const h200 = resolve(__dirname, '../../../../test/fixtures/nvidia-smi-h200');
const uuid = 'GPU-e04940e4-4467-8624-647f-1be10c338fe5';
const query =
  '--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,power.limit,clocks.sm,driver_version';

function fakeNvidiaSmi(body: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'nvidia-smi-')), 'nvidia-smi');
  writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

// Answers the two calls the inventory makes with what the H200 printed, and refuses any other arguments.
const replayH200 = () =>
  fakeNvidiaSmi(`
if [ "$#" -eq 0 ]; then exec cat '${h200}/nvidia-smi.txt'; fi
if [ "$#" -eq 2 ] && [ "$1" = '${query}' ] && [ "$2" = '--format=csv,noheader,nounits' ]; then
  exec cat '${h200}/nvidia-smi-query.csv'
fi
echo "unexpected arguments: $*" >&2
exit 64`);

const h200Report = {
  gpus: [{ index: 0, uuid, name: 'NVIDIA H200', memoryMiB: 143771 }],
  driverVersion: '580.159.04',
  cudaVersion: '13.0',
  source: 'nvidia-smi',
};

async function failure(promise: Promise<unknown>): Promise<NvidiaSmiFailedError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NvidiaSmiFailedError);
  return err as NvidiaSmiFailedError;
}

test('nvidia-smi on the H200 gives one GPU keyed by its UUID, with driver and CUDA versions', async () => {
  await expect(new NvidiaSmiInventory({ binary: replayH200() }).detect()).resolves.toEqual(h200Report);
});

test('no nvidia-smi on the host means no GPUs', async () => {
  const missing = join(tmpdir(), 'no-such-dir', 'nvidia-smi');
  await expect(new NvidiaSmiInventory({ binary: missing }).detect()).resolves.toEqual({ gpus: [], source: 'none' });
});

test('nvidia-smi that fails is an error carrying its exit code and what it printed', async () => {
  const binary = fakeNvidiaSmi(
    `echo 'Unable to determine the device handle for GPU0000:00:06.0: Unknown Error' >&2\nexit 9`,
  );
  const err = await failure(new NvidiaSmiInventory({ binary }).detect());
  expect(err.exitCode).toBe(9);
  expect(err.output).toBe('Unable to determine the device handle for GPU0000:00:06.0: Unknown Error');
  expect(err.message).toBe(
    `${binary} ${query} --format=csv,noheader,nounits exited with code 9: Unable to determine the device handle for GPU0000:00:06.0: Unknown Error`,
  );
});

test('a failure nvidia-smi reports on stdout still reaches the error', async () => {
  // The real H200's answer to a field it does not know: on stdout, exit code 2, nothing on stderr.
  const binary = fakeNvidiaSmi(`echo 'Field "bogus.field" is not a valid field to query.'\necho\nexit 2`);
  const err = await failure(new NvidiaSmiInventory({ binary }).detect());
  expect(err.exitCode).toBe(2);
  expect(err.message).toMatch(/exited with code 2: Field "bogus.field" is not a valid field to query\.$/);
});

test('a hung nvidia-smi is given up on', async () => {
  const binary = fakeNvidiaSmi('exec sleep 30');
  const started = Date.now();
  const err = await failure(new NvidiaSmiInventory({ binary, timeoutMs: 300 }).detect());
  expect(err.message).toMatch(/timed out after 300 ms$/);
  expect(Date.now() - started).toBeLessThan(10_000);
});

test('BERTH_GPUS as a count gives indices as ids', () => {
  expect(configInventory('2')).toEqual({
    gpus: [
      { index: 0, uuid: '0', name: 'configured GPU' },
      { index: 1, uuid: '1', name: 'configured GPU' },
    ],
    source: 'config',
  });
  expect(configInventory(' 8 ').gpus.map((g) => g.uuid)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
  expect(configInventory('0')).toEqual({ gpus: [], source: 'config' });
  expect(configInventory('')).toEqual({ gpus: [], source: 'config' });
});

test('BERTH_GPUS as a list names the GPUs by index or UUID', () => {
  expect(configInventory('0, 2,5').gpus).toEqual([
    { index: 0, uuid: '0', name: 'configured GPU' },
    { index: 2, uuid: '2', name: 'configured GPU' },
    { index: 5, uuid: '5', name: 'configured GPU' },
  ]);
  expect(configInventory(`${uuid},GPU-007a355d-7e59-1825-18b4-850e69cfa66c`).gpus).toEqual([
    { index: 0, uuid, name: 'configured GPU' },
    { index: 1, uuid: 'GPU-007a355d-7e59-1825-18b4-850e69cfa66c', name: 'configured GPU' },
  ]);
});

test('BERTH_GPUS garbage is refused by name', () => {
  expect(() => configInventory('all')).toThrow(/^BERTH_GPUS must be .*"all" is neither/);
  expect(() => configInventory('-1')).toThrow(/BERTH_GPUS/);
  expect(() => configInventory('0,,1')).toThrow(/BERTH_GPUS/);
  expect(() => configInventory('2.5')).toThrow(/BERTH_GPUS/);
  expect(() => configInventory(`0,${uuid}`)).toThrow(/BERTH_GPUS .*not a mix/);
  expect(() => configInventory('1,01')).toThrow(/BERTH_GPUS names GPU 1 twice/);
});

test('detectGpus: BERTH_GPUS wins over nvidia-smi, which is not run at all', async () => {
  const broken = fakeNvidiaSmi('exit 9');
  await expect(detectGpus({ configured: '1', nvidiaSmi: broken })).resolves.toEqual({
    gpus: [{ index: 0, uuid: '0', name: 'configured GPU' }],
    source: 'config',
  });
  await expect(detectGpus({ configured: '', nvidiaSmi: broken })).resolves.toEqual({ gpus: [], source: 'config' });
});

test('detectGpus: nvidia-smi when not configured; none without it; its failure is thrown', async () => {
  await expect(detectGpus({ nvidiaSmi: replayH200() })).resolves.toEqual(h200Report);
  await expect(detectGpus({ nvidiaSmi: join(tmpdir(), 'no-such-dir', 'nvidia-smi') })).resolves.toEqual({
    gpus: [],
    source: 'none',
  });
  await expect(detectGpus({ nvidiaSmi: fakeNvidiaSmi('echo gone >&2; exit 9') })).rejects.toThrow(
    /exited with code 9: gone$/,
  );
});
