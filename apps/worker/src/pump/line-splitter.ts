// Turns one output stream's bytes into lines: split across chunk boundaries, invalid UTF-8 replaced,
// carriage-return progress bars collapsed to their last state, very long lines cut with a marker.

export const maxLineBytes = 64 * 1024;
export const truncationMarker = ' … [line truncated by berth]';

export class LineSplitter {
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  private partial = '';
  private truncating = false;

  push(chunk: Buffer): string[] {
    return this.take(this.decoder.decode(chunk, { stream: true }), false);
  }

  /** Flushes what is left when the stream ends; a final line without a newline is still a line. */
  end(): string[] {
    return this.take(this.decoder.decode(), true);
  }

  private take(text: string, final: boolean): string[] {
    const lines: string[] = [];
    let rest = text;
    for (let nl = rest.indexOf('\n'); nl !== -1; nl = rest.indexOf('\n')) {
      this.append(rest.slice(0, nl));
      lines.push(finish(this.partial));
      this.partial = '';
      this.truncating = false;
      rest = rest.slice(nl + 1);
    }
    this.append(rest);
    if (final && (this.partial.length > 0 || this.truncating)) {
      lines.push(finish(this.partial));
      this.partial = '';
      this.truncating = false;
    }
    return lines;
  }

  private append(text: string): void {
    if (this.truncating) return;
    this.partial += text;
    // JS strings count UTF-16 units; a unit is at most 3 UTF-8 bytes, so only measure when it could matter.
    if (this.partial.length * 3 > maxLineBytes && Buffer.byteLength(this.partial) > maxLineBytes) {
      this.partial = cutToBytes(this.partial, maxLineBytes) + truncationMarker;
      this.truncating = true;
    }
  }
}

function finish(line: string): string {
  const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line;
  const cr = trimmed.lastIndexOf('\r');
  return cr === -1 ? trimmed : trimmed.slice(cr + 1);
}

function cutToBytes(text: string, bytes: number): string {
  const buf = Buffer.from(text).subarray(0, bytes);
  // Drop a multi-byte character cut in half rather than emit a replacement character.
  return new TextDecoder('utf-8', { fatal: false }).decode(buf).replace(/\uFFFD$/, '');
}
