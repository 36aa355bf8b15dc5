// Crash points for the tests of two-step writes: BERTH_FAULT=<name> kills the process, as a power cut would, at the
// point of that name. Unset (always, outside those tests) it does nothing.
export function faultPoint(name: string): void {
  if (process.env.BERTH_FAULT === name) process.kill(process.pid, 'SIGKILL');
}
