// A writer holding the SQLite store locked, for the tests of what a lookup answers meanwhile.
// WAL readers are only blocked by a writer in exclusive locking mode: the worst case.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

const HOLD = `
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('PRAGMA locking_mode=EXCLUSIVE')
c.execute('BEGIN EXCLUSIVE')
c.execute('UPDATE mailboxes SET acl = acl')
print('locked', flush=True)
if len(sys.argv) > 2:
    time.sleep(float(sys.argv[2]))
else:
    sys.stdin.read()
`;

/**
 * Resolves once `store` is locked. The lock is held for `seconds`, or without them until the
 * returned process's stdin is closed (or it is killed).
 */
export async function lockStore(store: string, seconds?: number): Promise<ChildProcessByStdio<Writable, Readable, null>> {
  const args = ['-c', HOLD, store, ...(seconds === undefined ? [] : [String(seconds)])];
  const hold = spawn('python3', args, { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((res) => hold.stdout.once('data', () => res()));
  return hold;
}
