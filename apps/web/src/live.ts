// Server-Sent Events through signed URLs: EventSource cannot send the bearer token, so each connection is made with
// a short-lived signed URL, and signed again (resuming after the last event seen) once the browser gives up on it.
import type { Api } from './api.js';

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'ended';

export interface FollowOptions {
  /** The path to sign, resuming after the event id given (undefined: from where the stream starts). */
  path(after: string | undefined): string;
  /** Handlers by SSE event name; data is the parsed JSON. */
  on: Record<string, (data: unknown, id: string) => void>;
  /** The stream's `end` event arrived: nothing more will come. */
  onEnd?(data: unknown): void;
  onStatus?(status: StreamStatus): void;
  /** A new connection opened after a lost one (events may have been missed where the path cannot resume). */
  onResume?(): void;
}

export interface Follower {
  close(): void;
}

const maxBackoffMs = 30_000;

export function follow(api: Api, opts: FollowOptions): Follower {
  let source: EventSource | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastId: string | undefined;
  let expiresAt = 0;
  let backoffMs = 1000;
  let opened = false;
  let closed = false;

  const status = (s: StreamStatus) => opts.onStatus?.(s);

  function retryLater() {
    status('reconnecting');
    timer = setTimeout(() => void open(), backoffMs);
    backoffMs = Math.min(backoffMs * 2, maxBackoffMs);
  }

  async function open() {
    if (closed) return;
    let signed;
    try {
      signed = await api.sign(opts.path(lastId));
    } catch {
      retryLater();
      return;
    }
    if (closed) return;
    expiresAt = Date.parse(signed.expiresAt);
    const es = new EventSource(signed.url);
    source = es;
    es.onopen = () => {
      backoffMs = 1000;
      if (opened) opts.onResume?.();
      opened = true;
      status('live');
    };
    for (const [name, handle] of Object.entries(opts.on)) {
      es.addEventListener(name, (e) => {
        const m = e as MessageEvent<string>;
        if (m.lastEventId) lastId = m.lastEventId;
        handle(JSON.parse(m.data), m.lastEventId);
      });
    }
    es.addEventListener('end', (e) => {
      const data = JSON.parse((e as MessageEvent<string>).data) as { reason?: string };
      if (data.reason === 'SIGNED_URL_EXPIRED') {
        // Only the URL ran out (the API re-checks it at each heartbeat): sign again and go on from the last event.
        es.close();
        void open();
        return;
      }
      stop();
      status('ended');
      opts.onEnd?.(data);
    });
    es.onerror = () => {
      // While its URL is valid the browser reconnects by itself, sending Last-Event-ID. A stream it closed (the URL
      // was refused, e.g. expired) or one whose URL is about to expire is signed again from the last event seen.
      if (es.readyState === EventSource.CLOSED || Date.now() > expiresAt - 5000) {
        es.close();
        retryLater();
      } else {
        status('reconnecting');
      }
    };
  }

  function stop() {
    closed = true;
    clearTimeout(timer);
    source?.close();
  }

  status('connecting');
  void open();
  return { close: stop };
}
