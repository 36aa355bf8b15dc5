// What every page gets: the API client, who is signed in, the shared feed of job state changes, navigation.
import type { JobState } from '@berth/contracts';
import type { Api, Me } from './api.js';
import { follow, type Follower, type StreamStatus } from './live.js';

/** One `state` event of GET /v1/events. */
export interface StateEvent {
  job: string;
  state: JobState;
  attempt: number;
  reason?: string;
}

type Listener = (e: StateEvent) => void;

/**
 * One EventSource on /v1/events for the whole app (browsers allow few connections per host): pages subscribe to it.
 * `resync` listeners run after a reconnect, since the feed cannot resume and changes may have been missed.
 */
export class StateFeed {
  private readonly listeners = new Set<Listener>();
  private readonly resyncs = new Set<() => void>();
  private follower: Follower | undefined;
  status: StreamStatus = 'connecting';

  constructor(private readonly onStatus: (s: StreamStatus) => void) {}

  start(api: Api): void {
    this.follower = follow(api, {
      path: () => '/v1/events',
      on: { state: (data) => this.listeners.forEach((l) => l(data as StateEvent)) },
      onResume: () => this.resyncs.forEach((r) => r()),
      onStatus: (s) => {
        this.status = s;
        this.onStatus(s);
      },
    });
  }

  stop(): void {
    this.follower?.close();
    this.listeners.clear();
    this.resyncs.clear();
  }

  /** Returns the unsubscribe function. */
  subscribe(listener: Listener, resync?: () => void): () => void {
    this.listeners.add(listener);
    if (resync) this.resyncs.add(resync);
    return () => {
      this.listeners.delete(listener);
      if (resync) this.resyncs.delete(resync);
    };
  }
}

export interface Ctx {
  api: Api;
  me: Me;
  feed: StateFeed;
  navigate(hash: string): void;
  /** A short message in the page's live region. */
  notify(message: string, kind?: 'info' | 'error'): void;
}

export interface Page {
  title: string;
  el: HTMLElement;
  /** Closes the page's streams and timers when another page replaces it. */
  dispose?(): void;
}

/** A page is built from the route's captures (e.g. the job id) and the hash's query. */
export type PageFactory = (ctx: Ctx, params: string[], query: URLSearchParams) => Page;

/** Collects a page's clean-ups so dispose() runs them all. */
export class Disposer {
  private readonly fns: (() => void)[] = [];
  add(fn: () => void): void {
    this.fns.push(fn);
  }
  interval(fn: () => void, ms: number): void {
    const t = setInterval(fn, ms);
    this.add(() => clearInterval(t));
  }
  dispose = (): void => {
    for (const fn of this.fns.splice(0)) fn();
  };
}
