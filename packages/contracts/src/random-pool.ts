// The id pool: random bytes drawn from the kernel a pool at a time, not a few per id: one getrandom call per ~200
// ids instead of one per id, which showed in the API's CPU under submit load (bench/RESULTS.md).
//
// Pooled bytes are as unpredictable as bytes drawn one call at a time while two things hold, and
// random-pool.test.ts fails when either breaks:
// - Each byte is handed out once: a take starts where the last one ended, and the pool is refilled from the kernel
//   before a take would reach past its end (the unused tail is thrown away, never reused).
// - A caller reads its bytes before its next take, which may refill the pool under them. newId reads its 20 bytes
//   at once; nothing else holds an offset.
import { randomFillSync } from 'node:crypto';

export class RandomPool {
  /** The pool: read bytes `at`..`at + n - 1` of it right after `take(n)` returned `at`. */
  readonly bytes: Buffer;
  private used: number;

  constructor(size = 4096) {
    this.bytes = Buffer.alloc(size);
    this.used = size;
  }

  /** Where `n` (at most the pool's size) fresh random bytes start in `bytes`; valid until the next take. */
  take(n: number): number {
    if (this.used + n > this.bytes.length) {
      randomFillSync(this.bytes);
      this.used = 0;
    }
    const at = this.used;
    this.used += n;
    return at;
  }
}
