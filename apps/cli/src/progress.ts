// A progress bar for uploads and downloads, drawn on stderr only when stderr is a terminal.
import { bytes } from './output.js';

export interface Progress {
  /** Bytes done so far. */
  update(done: number): void;
  finish(): void;
}

export function progressBar(label: string, total: number | undefined): Progress {
  const out = process.stderr;
  if (!out.isTTY) return { update: () => {}, finish: () => {} };
  let drawnAt = 0;
  let done = 0;
  const draw = () => {
    const width = 30;
    const frac = total ? Math.min(1, done / total) : 0;
    const bar = total ? `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ${Math.floor(frac * 100)}% ` : '';
    out.write(`\r${label} ${bar}${bytes(done)}${total ? ` / ${bytes(total)}` : ''}\x1b[K`);
  };
  return {
    update(n) {
      done = n;
      if (Date.now() - drawnAt < 100) return;
      drawnAt = Date.now();
      draw();
    },
    finish() {
      draw();
      out.write('\n');
    },
  };
}
