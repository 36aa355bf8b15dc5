// A lean Server-Sent Events client on node:http: calls onEvent(event, data, id) per event and resolves on the
// `end` event (or when the server closes the stream). Lean because it shares the machine with what it measures.
import { request } from 'node:http';
import { authHeaders } from './berth.mjs';

export function followSse(url, onEvent, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...authHeaders(url), ...headers } }, (res) => {
      if (!String(res.headers['content-type']).includes('text/event-stream')) {
        res.resume();
        reject(new Error(`${url}: not an event stream (${res.statusCode})`));
        return;
      }
      res.setEncoding('utf8');
      let buf = '';
      let done = false;
      res.on('data', (chunk) => {
        if (done) return;
        buf += chunk;
        let from = 0;
        for (let sep = buf.indexOf('\n\n'); sep !== -1; sep = buf.indexOf('\n\n', from)) {
          const block = buf.slice(from, sep);
          from = sep + 2;
          if (block.startsWith(':')) continue;
          let event = 'message';
          let data = '';
          let id;
          for (const line of block.split('\n')) {
            if (line.startsWith('data: ')) data += line.slice(6);
            else if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('id: ')) id = line.slice(4);
          }
          onEvent(event, data, id);
          if (event === 'end') {
            done = true;
            req.destroy();
            resolve({ ended: true });
            return;
          }
        }
        buf = buf.slice(from);
      });
      res.on('end', () => resolve({ ended: done }));
      res.on('error', (err) => (done ? undefined : reject(err)));
    });
    req.on('error', (err) => (err.code === 'ECONNRESET' ? resolve({ ended: false }) : reject(err)));
    req.end();
  });
}
