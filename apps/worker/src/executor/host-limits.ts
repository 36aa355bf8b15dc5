// NGC images want `--ulimit memlock=-1`; a host whose own hard limit is lower (a nested container, a locked-down VM)
// makes runc fail every start. Read this process's hard limit and never ask for more than the host allows.
import { readFileSync } from 'node:fs';

/** The memlock value to give containers: -1 (unlimited) where the host permits it, else its hard limit in bytes. */
export function memlockLimit(limitsFile = '/proc/self/limits'): number {
  let text: string;
  try {
    text = readFileSync(limitsFile, 'utf8');
  } catch {
    return -1;
  }
  const line = text.split('\n').find((l) => l.startsWith('Max locked memory'));
  const hard = line?.slice('Max locked memory'.length).trim().split(/\s+/)[1];
  return hard === undefined || hard === 'unlimited' ? -1 : Number(hard);
}
