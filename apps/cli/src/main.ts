#!/usr/bin/env node
// `berth`: runs one command; any failure is one line on stderr (`berth: CODE: message`) and a non-zero exit.
import { buildCli } from './cli.js';
import { errorLine } from './cli-error.js';
import { readEnv } from './env.js';

// `berth logs … | head` closes stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

try {
  await buildCli(readEnv(process.env)).parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`${errorLine(err)}\n`);
  process.exitCode = 1;
}
