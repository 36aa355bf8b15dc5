import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostShare, jobLimitDefaults, memlockLimit } from './host-limits.js';

const limits = (memlock: string) => {
  const file = join(mkdtempSync(join(tmpdir(), 'limits-')), 'limits');
  writeFileSync(
    file,
    `Limit                     Soft Limit           Hard Limit           Units\nMax stack size            8388608              unlimited            bytes\nMax locked memory         ${memlock}            bytes\n`,
  );
  return file;
};

test('memlock is unlimited where the host allows it, else the host hard limit', () => {
  expect(memlockLimit(limits('unlimited            unlimited'))).toBe(-1);
  expect(memlockLimit(limits('8388608              8388608'))).toBe(8388608);
  expect(memlockLimit('/nonexistent')).toBe(-1);
});

describe('job limit defaults', () => {
  const host = { memoryBytes: 64 * 1024 ** 3, cpus: 16 };

  test('unset: the host share, 3/4 of the memory and 7/8 of the CPUs, split between the jobs that run at once', () => {
    expect(jobLimitDefaults({}, { host })).toEqual({ memoryBytes: 48 * 1024 ** 3, nanoCpus: 14e9 });
    expect(jobLimitDefaults({}, { host, concurrency: 4 })).toEqual({ memoryBytes: 12 * 1024 ** 3, nanoCpus: 3.5e9 });
    // Never below 256 MiB and one CPU, however many jobs.
    expect(jobLimitDefaults({}, { host, concurrency: 1000 })).toEqual({ memoryBytes: 256 * 1024 ** 2, nanoCpus: 1e9 });
    // A one- or two-core host still gives a job at least one whole CPU.
    expect(hostShare({ memoryBytes: 2 * 1024 ** 3, cpus: 1 }).nanoCpus).toBe(1e9);
    expect(hostShare({ memoryBytes: 2 * 1024 ** 3, cpus: 2 }).nanoCpus).toBe(1.75e9);
  });

  test('configured values win (BERTH_JOB_MEMORY_DEFAULT, BERTH_JOB_CPUS_DEFAULT)', () => {
    expect(jobLimitDefaults({ memory: '8g', cpus: 2.5 }, { host })).toEqual({
      memoryBytes: 8 * 1024 ** 3,
      nanoCpus: 2.5e9,
    });
    expect(jobLimitDefaults({ memory: '512m' }, { host, concurrency: 4 })).toEqual({
      memoryBytes: 512 * 1024 ** 2,
      nanoCpus: 3.5e9,
    });
  });

  test('a memory default that is no size, or below what Docker accepts, stops the worker at start', () => {
    expect(() => jobLimitDefaults({ memory: 'lots' }, { host })).toThrow(/BERTH_JOB_MEMORY_DEFAULT is not a size/);
    expect(() => jobLimitDefaults({ memory: '1m' }, { host })).toThrow(/6 MiB/);
  });

  test('read from this host when not given', () => {
    const d = jobLimitDefaults({});
    expect(d.memoryBytes).toBeGreaterThan(0);
    expect(d.nanoCpus).toBeGreaterThanOrEqual(1e9);
  });
});
