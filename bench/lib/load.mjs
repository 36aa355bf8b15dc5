// Load on the API with a real load generator (autocannon, in this process): POST /v1/jobs from many connections.
import autocannon from 'autocannon';
import { authHeaders } from './berth.mjs';

/**
 * Submits `spec` from `connections` connections, for `duration` seconds or until `amount` requests were sent.
 * Returns jobs/s and the count of 201s, what else came back, and the latency percentiles (ms).
 */
export async function postJobs(url, spec, { connections, duration, amount }) {
  const started = globalThis.performance.now();
  const r = await autocannon({
    url: `${url}/v1/jobs`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders(url) },
    body: JSON.stringify(spec),
    connections,
    ...(amount ? { amount } : { duration }),
  });
  const seconds = (globalThis.performance.now() - started) / 1000;
  return {
    rate: r['2xx'] / (amount ? seconds : duration),
    count: r['2xx'],
    other: r.non2xx + r.errors + r.timeouts,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
  };
}
