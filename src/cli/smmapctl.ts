#!/usr/bin/env node
// smmapctl: the admin tool for smmapd's SQLite store. Everything is in src/ctl.
import { main } from '../ctl/main';

// `smmapctl mailbox list | head`: a reader that went away is not an error of ours.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
