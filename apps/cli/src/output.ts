// What commands print: aligned tables and key/value blocks for people, JSON for scripts (--json).

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Columns padded to their widest cell; the last column is not padded. */
export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  process.stdout.write([headers, ...rows].map((r) => `${line(r)}\n`).join(''));
}

/** `key: value` lines, leaving out empty values. */
export function printFields(fields: [string, string | number | undefined][]): void {
  const shown = fields.filter((f): f is [string, string | number] => f[1] !== undefined && f[1] !== '');
  const width = Math.max(...shown.map(([k]) => k.length)) + 1;
  // A value of several lines (a failure's last stderr lines) goes on indented under its first.
  const indent = '\n' + ' '.repeat(width + 1);
  process.stdout.write(
    shown.map(([k, v]) => `${`${k}:`.padEnd(width)} ${String(v).split('\n').join(indent)}\n`).join(''),
  );
}

/** A notice for the person at the terminal, kept off stdout. */
export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** An ISO time as `YYYY-MM-DD HH:MM:SS` (UTC); empty for none. */
export function time(iso: string | null | undefined): string {
  return iso ? iso.replace('T', ' ').slice(0, 19) : '';
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/** A metric value with six significant digits. */
export function figure(n: number): string {
  return String(Number(n.toPrecision(6)));
}
