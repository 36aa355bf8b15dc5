// A TCP front for the Docker engine's socket that records every byte both ways, so a test can read each request a
// process sent to the engine (DOCKER_HOST=tcp://…) and each answer it got, headers and bodies included.
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface HttpMessage {
  /** `POST /containers/create?name=…` for a request, `HTTP/1.1 201 Created` for a response. */
  startLine: string;
  /** Header names lowercased; values as sent. */
  headers: Record<string, string>;
  /** The body with any chunked framing removed. */
  body: Buffer;
}

export interface RecordedExchange {
  method: string;
  /** Path and query, as sent (still percent-encoded). */
  url: string;
  request: HttpMessage;
  /** Absent when the engine had not answered (yet) when the recording was read. */
  response?: HttpMessage & { status: number };
}

interface Connection {
  up: Buffer[];
  down: Buffer[];
}

export class DockerRecorder {
  private readonly connections: Connection[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    /** `tcp://127.0.0.1:<port>`, for DOCKER_HOST. */
    readonly dockerHost: string,
  ) {}

  static async start(socketPath = '/var/run/docker.sock'): Promise<DockerRecorder> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const recorder = new DockerRecorder(server, `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('connection', (client) => recorder.pipe(client, socketPath));
    return recorder;
  }

  /** Every byte sent to the engine, per connection, in order. */
  rawRequests(): Buffer[] {
    return this.connections.map((c) => Buffer.concat(c.up));
  }

  /** Every byte the engine sent back, per connection, in order. */
  rawResponses(): Buffer[] {
    return this.connections.map((c) => Buffer.concat(c.down));
  }

  /** The requests and answers, parsed; a connection upgraded to a raw stream ends with that stream as a body. */
  exchanges(): RecordedExchange[] {
    return this.connections.flatMap((c) => {
      const requests = parseMessages(Buffer.concat(c.up), 'request', []);
      const responses = parseMessages(
        Buffer.concat(c.down),
        'response',
        requests.map((r) => r.startLine.split(' ')[0] ?? ''),
      );
      return requests.map((request, i): RecordedExchange => {
        const [method = '', url = ''] = request.startLine.split(' ');
        const response = responses[i];
        return {
          method,
          url,
          request,
          ...(response ? { response: { ...response, status: Number(response.startLine.split(' ')[1]) } } : {}),
        };
      });
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private pipe(client: Socket, socketPath: string): void {
    const connection: Connection = { up: [], down: [] };
    this.connections.push(connection);
    const engine = createConnection(socketPath);
    for (const s of [client, engine]) {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
      s.on('error', () => {});
    }
    client.on('data', (d: Buffer) => {
      connection.up.push(Buffer.from(d));
      engine.write(d);
    });
    engine.on('data', (d: Buffer) => {
      connection.down.push(Buffer.from(d));
      client.write(d);
    });
    client.once('close', () => engine.destroy());
    engine.once('close', () => client.destroy());
  }
}

/**
 * HTTP/1.1 messages back to back on one connection. Bodies by Content-Length or chunked; a response to HEAD, a 1xx
 * (but 101), 204 or 304 has none; after a 101 or an Upgrade request, and for a response with neither length nor
 * chunking, the rest of the connection is the body. An unfinished last message keeps what arrived.
 */
function parseMessages(bytes: Buffer, kind: 'request' | 'response', methods: string[]): HttpMessage[] {
  const messages: HttpMessage[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', offset, 'latin1');
    if (end === -1) {
      messages.push({ startLine: bytes.toString('latin1', offset), headers: {}, body: Buffer.alloc(0) });
      break;
    }
    const [startLine = '', ...lines] = bytes.toString('latin1', offset, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    offset = end + 4;
    const status = kind === 'response' ? Number(startLine.split(' ')[1]) : 0;
    const method = methods[messages.length];
    const upgraded = kind === 'request' ? 'upgrade' in headers : status === 101;
    const bodiless =
      kind === 'response' && (method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304);
    let body: Buffer;
    if (upgraded) {
      body = bytes.subarray(offset);
      offset = bytes.length;
    } else if (bodiless) {
      body = Buffer.alloc(0);
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      body = bytes.subarray(offset, offset + length);
      offset += length;
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const chunks: Buffer[] = [];
      for (;;) {
        const lineEnd = bytes.indexOf('\r\n', offset, 'latin1');
        if (lineEnd === -1) {
          offset = bytes.length;
          break;
        }
        const size = parseInt(bytes.toString('latin1', offset, lineEnd), 16);
        offset = lineEnd + 2;
        if (!(size > 0)) {
          // The last chunk, then trailers (none from the engine) and a blank line.
          const trailerEnd = bytes.indexOf('\r\n', offset, 'latin1');
          offset = trailerEnd === -1 ? bytes.length : trailerEnd + 2;
          break;
        }
        chunks.push(bytes.subarray(offset, Math.min(offset + size, bytes.length)));
        offset += size + 2;
      }
      body = Buffer.concat(chunks);
    } else if (kind === 'response') {
      body = bytes.subarray(offset);
      offset = bytes.length;
    } else {
      body = Buffer.alloc(0);
    }
    messages.push({ startLine, headers, body });
  }
  return messages;
}
