// Server-Sent Events read back: the API writes its follows as text/event-stream (`id:`, `event:` and `data:` lines,
// a blank line after each event, `:` comment lines as heartbeats), and every client of berth's (the CLI, the demo,
// the tests, the benchmarks) reads them with this one parser. It keeps to the event-stream rules of the HTML
// standard that those clients rely on: lines end in LF or CRLF, a field's value may follow its colon with one space,
// data lines are joined with newlines, comments and unknown fields (`retry` included) are ignored, an event without
// data is not dispatched, and an event the stream cut off before its blank line is dropped.

export interface SseEvent {
  /** Only when the event carried an id line. */
  id?: string;
  /** `message` when the event named none. */
  event: string;
  data: string;
}

/**
 * Reads an event stream chunk by chunk, for callers that are handed chunks (a node:http response's `data`). Chunks
 * may split the stream anywhere: inside a line, between a CR and its LF, inside a UTF-8 character.
 */
export class SseParser {
  private readonly decoder = new TextDecoder();
  private buf = '';
  private id: string | undefined;
  private event = '';
  private data: string[] = [];

  /** The events this chunk completes, in order. */
  push(chunk: Uint8Array): SseEvent[] {
    const events: SseEvent[] = [];
    const buf = this.buf + this.decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n', start)) {
      const line = buf.slice(start, buf[nl - 1] === '\r' ? nl - 1 : nl);
      start = nl + 1;
      if (line === '') {
        if (this.data.length > 0) {
          const ev: SseEvent = { event: this.event || 'message', data: this.data.join('\n') };
          if (this.id !== undefined) ev.id = this.id;
          events.push(ev);
        }
        this.id = undefined;
        this.event = '';
        this.data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(line[colon + 1] === ' ' ? colon + 2 : colon + 1);
      if (field === 'id') this.id = value;
      else if (field === 'event') this.event = value;
      else if (field === 'data') this.data.push(value);
    }
    this.buf = buf.slice(start);
    return events;
  }
}

/** The events of one stream in order, for callers that hold the stream (a fetch response's body). */
export async function* parseEvents(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const parser = new SseParser();
  for await (const chunk of chunks) yield* parser.push(chunk);
}
