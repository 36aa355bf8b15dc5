// Server-Sent Events: following an event stream to its `end` event across dropped connections by reconnecting with
// Last-Event-ID, as a browser's EventSource does, so nothing is repeated and nothing is missed. The stream itself is
// read by the parser every client of berth's shares (`@berth/contracts`).
import { parseEvents, type SseEvent } from '@berth/contracts/sse';
import { isTransient, networkCause, type ApiClient } from './api-client.js';
import { CliError } from './cli-error.js';

/** A connection silent this long is taken as dropped (the API sends a heartbeat comment every 15 s). */
const idleMs = 45_000;
/** Connections in a row that may fail without one event before following gives up. */
const maxFailures = 8;

/**
 * Follows the SSE at `path` from after `lastEventId`, handing every event but `end` to `onEvent`, and returns the
 * `end` event. A connection that drops (error, close before `end`, silence) is made again with Last-Event-ID; errors
 * the API answers with a 4xx are not retried.
 */
export async function followEvents(
  api: ApiClient,
  path: string,
  onEvent: (e: SseEvent) => void,
  lastEventId?: string,
): Promise<SseEvent> {
  let last = lastEventId;
  for (let failures = 0; ;) {
    const ac = new AbortController();
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => ac.abort(), idleMs);
    };
    let progressed = false;
    let lastError: unknown;
    try {
      arm();
      const res = await api.request(path, {
        headers: { accept: 'text/event-stream', ...(last ? { 'last-event-id': last } : {}) },
        signal: ac.signal,
      });
      for await (const ev of parseEvents(watched(res.body, arm))) {
        progressed = true;
        if (ev.id) last = ev.id;
        if (ev.event === 'end') return ev;
        onEvent(ev);
      }
    } catch (err) {
      if (!isTransient(err)) throw err;
      lastError = err;
    } finally {
      clearTimeout(idle);
      ac.abort();
    }
    failures = progressed ? 0 : failures + 1;
    if (failures >= maxFailures) {
      throw lastError instanceof CliError
        ? lastError
        : new CliError('STREAM_LOST', `${path} kept dropping: ${lastError ? networkCause(lastError) : 'closed early'}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** failures, 5000)));
  }
}

async function* watched(body: ReadableStream<Uint8Array> | null, onChunk: () => void): AsyncGenerator<Uint8Array> {
  if (!body) return;
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    onChunk();
    yield chunk;
  }
}
