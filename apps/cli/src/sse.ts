// Server-Sent Events: parsing an event stream, and following one to its `end` event across dropped connections by
// reconnecting with Last-Event-ID, as a browser's EventSource does, so nothing is repeated and nothing is missed.
import { isTransient, networkCause, type ApiClient } from './api-client.js';
import { CliError } from './cli-error.js';

export interface SseEvent {
  /** Only when the event carried an id line. */
  id?: string;
  event: string;
  data: string;
}

/** The events of one stream in order; comments (heartbeats) are skipped, an event cut off by the stream's end is dropped. */
export async function* parseEvents(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buf = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  for await (const chunk of chunks) {
    buf += decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n', start)) {
      const line = buf.slice(start, buf[nl - 1] === '\r' ? nl - 1 : nl);
      start = nl + 1;
      if (line === '') {
        if (data.length > 0)
          yield { ...(id !== undefined ? { id } : {}), event: event || 'message', data: data.join('\n') };
        [id, event, data] = [undefined, '', []];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(line[colon + 1] === ' ' ? colon + 2 : colon + 1);
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    buf = buf.slice(start);
  }
}

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
