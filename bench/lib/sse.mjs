// A lean Server-Sent Events client on node:http: calls onEvent(event, data, id) per event and resolves on the
// `end` event (or when the server closes the stream). Lean because it shares the machine with what it measures.
// The stream is read by the parser every client of berth's shares (packages/contracts, built).
import { request } from 'node:http';
import { join } from 'node:path';
import { authHeaders, repo } from './berth.mjs';

export async function followSse(url, onEvent, headers = {}) {
  const { SseParser } = await import(join(repo, 'packages/contracts/dist/sse.js'));
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...authHeaders(url), ...headers } }, (res) => {
      if (!String(res.headers['content-type']).includes('text/event-stream')) {
        res.resume();
        reject(new Error(`${url}: not an event stream (${res.statusCode})`));
        return;
      }
      const parser = new SseParser();
      let done = false;
      res.on('data', (chunk) => {
        if (done) return;
        for (const { event, data, id } of parser.push(chunk)) {
          onEvent(event, data, id);
          if (event === 'end') {
            done = true;
            req.destroy();
            resolve({ ended: true });
            return;
          }
        }
      });
      res.on('end', () => resolve({ ended: done }));
      res.on('error', (err) => (done ? undefined : reject(err)));
    });
    req.on('error', (err) => (err.code === 'ECONNRESET' ? resolve({ ended: false }) : reject(err)));
    req.end();
  });
}
