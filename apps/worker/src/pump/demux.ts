// Splits Docker's multiplexed log stream (8-byte header: stream type, 3 zero bytes, big-endian length) into frames.

export type StreamName = 'stdout' | 'stderr';

export interface Frame {
  stream: StreamName;
  payload: Buffer;
}

export class Demuxer {
  private pending: Buffer = Buffer.alloc(0);

  /** Feeds a chunk; returns every frame it completes. A frame may span any number of chunks. */
  push(chunk: Buffer): Frame[] {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    const frames: Frame[] = [];
    while (buf.length >= 8) {
      const size = buf.readUInt32BE(4);
      if (buf.length < 8 + size) break;
      // Type 2 is stderr; 0 (stdin echo) and 1 are treated as stdout.
      frames.push({ stream: buf[0] === 2 ? 'stderr' : 'stdout', payload: buf.subarray(8, 8 + size) });
      buf = buf.subarray(8 + size);
    }
    this.pending = Buffer.from(buf);
    return frames;
  }
}
