#!/usr/bin/env node
// The installed `berth` command: runs the built CLI (`npm run build` compiles apps/cli/src to dist). A file that
// exists before the build, so `npm ci` links it and `npx berth` works in a fresh clone once it is built.
await import('../dist/main.js');
