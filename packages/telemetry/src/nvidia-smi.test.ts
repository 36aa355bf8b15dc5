import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  gpuQueryArgs,
  gpuQueryFields,
  NvidiaSmiParseError,
  parseBannerVersions,
  parseGpuList,
  parseGpuQueryCsv,
  parseXmlVersions,
} from './nvidia-smi.js';

// Real outputs captured on an H200 (driver 580.159.04), copied into test/fixtures.
const h200 = resolve(__dirname, '../../../test/fixtures/nvidia-smi-h200');
const read = (file: string) => readFileSync(resolve(h200, file), 'utf8');

const uuid = 'GPU-e04940e4-4467-8624-647f-1be10c338fe5';
const realLine = read('nvidia-smi-query.csv').trim();

function thrown(fn: () => unknown): NvidiaSmiParseError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NvidiaSmiParseError);
    return err as NvidiaSmiParseError;
  }
  throw new Error('expected NvidiaSmiParseError, nothing was thrown');
}

test('the query command asks for exactly the parsed fields, without header or units', () => {
  expect(gpuQueryArgs).toEqual([
    '--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,power.limit,clocks.sm,driver_version',
    '--format=csv,noheader,nounits',
  ]);
  expect(realLine.split(',')).toHaveLength(gpuQueryFields.length);
});

test('the real H200 query line parses to its inventory and telemetry', () => {
  expect(parseGpuQueryCsv(read('nvidia-smi-query.csv'))).toEqual([
    {
      index: 0,
      uuid,
      name: 'NVIDIA H200',
      memoryTotalMiB: 143771,
      memoryUsedMiB: 0,
      utilizationPercent: 0,
      temperatureC: 39,
      powerDrawW: 80.66,
      powerLimitW: 700,
      smClockMHz: 345,
      driverVersion: '580.159.04',
    },
  ]);
});

test('eight GPUs, one line each, keep their order, indices and UUIDs', () => {
  const uuids = Array.from({ length: 8 }, (_, i) => `GPU-e04940e4-4467-8624-647f-1be10c338f${i}${i}`);
  const csv = uuids.map((u, i) => realLine.replace(/^0, /, `${i}, `).replace(uuid, u)).join('\r\n') + '\r\n';
  const rows = parseGpuQueryCsv(csv);
  expect(rows.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  expect(rows.map((r) => r.uuid)).toEqual(uuids);
  expect(new Set(rows.map((r) => r.name))).toEqual(new Set(['NVIDIA H200']));
  expect(rows.every((r) => r.memoryTotalMiB === 143771)).toBe(true);
});

test('readings the GPU cannot give are undefined, never NaN', () => {
  const line = realLine
    .replace(', 80.66, 700.00,', ', [N/A], [Not Supported],')
    .replace(', 345,', ', [Unknown Error],');
  const [row] = parseGpuQueryCsv(line);
  expect(row?.powerDrawW).toBeUndefined();
  expect(row?.powerLimitW).toBeUndefined();
  expect(row?.smClockMHz).toBeUndefined();
  expect(row?.temperatureC).toBe(39);
  expect(Object.values(row ?? {}).some((v) => Number.isNaN(v))).toBe(false);
});

test('no GPUs is an empty list', () => {
  expect(parseGpuQueryCsv('')).toEqual([]);
  expect(parseGpuQueryCsv('\n')).toEqual([]);
});

test('malformed query lines are rejected with the offending line', () => {
  // The real header-and-units capture is a different query: six columns, and a header line.
  const header = read('nvidia-smi-query-header.csv');
  const wrongQuery = thrown(() => parseGpuQueryCsv(header));
  expect(wrongQuery.line).toBe(header.split('\n')[0]);
  expect(wrongQuery.lineNumber).toBe(1);
  expect(wrongQuery.message).toMatch(/expected 11 columns/);

  const badNumber = thrown(() => parseGpuQueryCsv(`${realLine}\n${realLine.replace(', 143771,', ', 143771 MiB,')}`));
  expect(badNumber.lineNumber).toBe(2);
  expect(badNumber.message).toMatch(/memory\.total is not a number: "143771 MiB"/);

  expect(thrown(() => parseGpuQueryCsv(realLine.replace(uuid, '[N/A]'))).message).toMatch(/uuid is missing/);
  expect(thrown(() => parseGpuQueryCsv(realLine.replace(/^0, /, '1.5, '))).message).toMatch(/not a GPU index/);
  expect(thrown(() => parseGpuQueryCsv(realLine.replace(/^0, /, 'x, '))).message).toMatch(/index is not a number/);
});

test('driver and CUDA versions from the real banner and the real XML agree', () => {
  const expected = { driverVersion: '580.159.04', cudaVersion: '13.0' };
  expect(parseBannerVersions(read('nvidia-smi.txt'))).toEqual(expected);
  expect(parseXmlVersions(read('nvidia-smi-q.xml'))).toEqual(expected);
});

test('a banner or XML without a driver version is rejected; CUDA N/A is left out', () => {
  const banner = read('nvidia-smi.txt');
  expect(parseBannerVersions(banner.replace('CUDA Version: 13.0  ', 'CUDA Version: N/A   '))).toEqual({
    driverVersion: '580.159.04',
  });
  const noDriver = thrown(() => parseBannerVersions(banner.replace('Driver Version:', 'Driver:')));
  expect(noDriver.line).toBe(banner.split('\n')[0]);
  // What nvidia-smi prints (on stdout) when the driver is not loaded.
  expect(() =>
    parseBannerVersions(
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n",
    ),
  ).toThrow(NvidiaSmiParseError);

  const xml = read('nvidia-smi-q.xml');
  expect(parseXmlVersions(xml.replace('<cuda_version>13.0</cuda_version>', ''))).toEqual({
    driverVersion: '580.159.04',
  });
  expect(() => parseXmlVersions(xml.replace('<driver_version>580.159.04</driver_version>', ''))).toThrow(
    /no <driver_version>/,
  );
});

test('nvidia-smi -L lists the real GPU; MIG instances are not GPUs; anything else is rejected', () => {
  expect(parseGpuList(read('nvidia-smi-L.txt'))).toEqual([{ index: 0, name: 'NVIDIA H200', uuid }]);

  const withMig = `${read('nvidia-smi-L.txt')}  MIG 1g.18gb     Device  0: (UUID: MIG-0b7c9a3e-6a0f-5b1e-9d1c-2f5d8a7e4c11)\n`;
  expect(parseGpuList(withMig)).toEqual([{ index: 0, name: 'NVIDIA H200', uuid }]);

  const garbage = thrown(() => parseGpuList(`${read('nvidia-smi-L.txt')}No devices were found\n`));
  expect(garbage.line).toBe('No devices were found');
  expect(garbage.lineNumber).toBe(2);
});
