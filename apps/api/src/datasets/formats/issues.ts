// What a dataset check reports: each problem with its file and line, counted in full but listed only up to a limit.

export interface DatasetIssue {
  /** Relative to the dataset root, `/`-separated; '.' for the folder itself. */
  file: string;
  line?: number;
  message: string;
}

/** How many issues a report lists; the count goes on past it. */
export const MAX_ERRORS = 20;

export class Issues {
  readonly list: DatasetIssue[] = [];
  count = 0;

  add(file: string, message: string, line?: number): void {
    this.count++;
    if (this.list.length < MAX_ERRORS) this.list.push(line === undefined ? { file, message } : { file, line, message });
  }
}

/** JSON text, with invisible characters (a byte-order mark, zero-width and bidi marks) escaped too. */
export function quote(s: unknown): string {
  return JSON.stringify(s).replace(
    /[\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
