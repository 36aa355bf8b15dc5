// How a berth process stops: on the first SIGINT or SIGTERM it closes (finishing what it holds), then exits 0; a close
// that takes longer than the grace exits 1. Later signals change nothing.

export function exitOnSignals(close: () => Promise<void>, graceMs = 10_000): void {
  let closing = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (closing) return;
      closing = true;
      setTimeout(() => process.exit(1), graceMs).unref();
      void close().then(() => process.exit(0));
    });
  }
}
