import { parseEvents, SseParser, type SseEvent } from './sse.js';

const bytes = (text: string) => new TextEncoder().encode(text);

async function* chunked(...chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield chunk;
}

async function collect(...chunks: Uint8Array[]): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const ev of parseEvents(chunked(...chunks))) out.push(ev);
  return out;
}

/** The stream cut into pieces of `size` bytes, so pieces end inside lines, CRLFs and UTF-8 characters. */
function pieces(stream: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i += size) out.push(stream.subarray(i, i + size));
  return out;
}

// What the API writes (see apps/api/src/streams/sse.ts): a comment on connect, heartbeats between events, an id on
// log and end events but none on truncated ones, one data line of JSON each, and text in any script.
const apiStream = [
  ': following',
  '',
  'id: 1712-0',
  'event: log',
  'data: {"lines":["naïve café","€ 5","😀 done"]}',
  '',
  ': heartbeat',
  '',
  'event: truncated',
  'data: {"dropped":3,"message":"3 lines dropped"}',
  '',
  'id: 1712-1',
  'event: end',
  'data: {"state":"succeeded"}',
  '',
  '',
].join('\n');

const apiEvents: SseEvent[] = [
  { id: '1712-0', event: 'log', data: '{"lines":["naïve café","€ 5","😀 done"]}' },
  { event: 'truncated', data: '{"dropped":3,"message":"3 lines dropped"}' },
  { id: '1712-1', event: 'end', data: '{"state":"succeeded"}' },
];

describe('parseEvents', () => {
  it("reads the API's stream: ids, event names and data, with comments and heartbeats left out", async () => {
    const events = await collect(bytes(apiStream));
    expect(events).toEqual(apiEvents);
    expect('id' in events[1]!).toBe(false);
  });

  it('reads the same events however the stream is cut, even inside a UTF-8 character or between CR and LF', async () => {
    const stream = bytes(apiStream);
    const crlf = bytes(apiStream.replaceAll('\n', '\r\n'));
    for (const s of [stream, crlf]) {
      for (let size = 1; size <= 7; size++) expect(await collect(...pieces(s, size))).toEqual(apiEvents);
      for (let at = 0; at <= s.length; at++) {
        expect(await collect(s.subarray(0, at), s.subarray(at))).toEqual(apiEvents);
      }
    }
  });

  it('does not mangle a character whose bytes arrive in different chunks', async () => {
    const emoji = bytes('data: 😀\n\n');
    // 'data: ' is 6 bytes; the emoji's 4 bytes are split 1 + 3, 2 + 2 and 3 + 1.
    for (const at of [7, 8, 9]) {
      expect(await collect(emoji.subarray(0, at), emoji.subarray(at))).toEqual([{ event: 'message', data: '😀' }]);
    }
  });

  it('joins data lines with newlines and names an unnamed event message', async () => {
    expect(await collect(bytes('data: first\ndata: second\ndata:\ndata: fourth\n\n'))).toEqual([
      { event: 'message', data: 'first\nsecond\n\nfourth' },
    ]);
  });

  it('takes a value with or without the space after the colon, and only one space', async () => {
    expect(await collect(bytes('id:7\nevent:state\ndata:  two spaces\n\n'))).toEqual([
      { id: '7', event: 'state', data: ' two spaces' },
    ]);
    expect(await collect(bytes('data\n\n'))).toEqual([{ event: 'message', data: '' }]);
  });

  it('ignores retry, unknown fields and a comment inside an event', async () => {
    expect(await collect(bytes('retry: 3000\nevent: log\n: keep-alive\nfoo: bar\ndata: x\n\nretry: 10\n\n'))).toEqual([
      { event: 'log', data: 'x' },
    ]);
  });

  it('keeps each id, event name and data to its own event', async () => {
    expect(await collect(bytes('id: 1\nevent: log\ndata: a\n\ndata: b\n\n'))).toEqual([
      { id: '1', event: 'log', data: 'a' },
      { event: 'message', data: 'b' },
    ]);
  });

  it('dispatches no event without data, and drops one the stream cut off before its blank line', async () => {
    expect(await collect(bytes('id: 1\nevent: log\n\n\n\ndata: kept\n\nid: 2\ndata: cut off\n'))).toEqual([
      { event: 'message', data: 'kept' },
    ]);
    expect(await collect(bytes('data: kept\n\ndata: cut off'))).toEqual([{ event: 'message', data: 'kept' }]);
  });
});

describe('SseParser', () => {
  it('hands each event over with the chunk that completes it, carrying a partial event to the next', () => {
    const parser = new SseParser();
    expect(parser.push(bytes(': following\n\nid: 1\nevent: log\nda'))).toEqual([]);
    expect(parser.push(bytes('ta: a\n'))).toEqual([]);
    expect(parser.push(bytes('\ndata: b\n\ndata: c'))).toEqual([
      { id: '1', event: 'log', data: 'a' },
      { event: 'message', data: 'b' },
    ]);
    expect(parser.push(bytes('\n\n'))).toEqual([{ event: 'message', data: 'c' }]);
  });
});
