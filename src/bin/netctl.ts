#!/usr/bin/env node
/** netctl entry point: one composition root per process. */
import { runNetctl } from '../cli/netctl.js';

runNetctl(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`netctl: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
