// The labels (classify) or tags (ner) of a file, so that an eval file's can be checked against the training file's.

const MAX_LABELS = 10_000;

/** The labels (or tags) of a file and the line each first occurs on. */
export class Labels {
  readonly first = new Map<string, number>();
  /** Past MAX_LABELS distinct values it is no label column, and the cross-check is skipped. */
  overflow = false;

  note(label: string, line: number): void {
    if (this.overflow || this.first.has(label)) return;
    if (this.first.size >= MAX_LABELS) this.overflow = true;
    else this.first.set(label, line);
  }
}
