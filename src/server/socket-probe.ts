// Is an inherited descriptor a listening socket or a connected one? systemd says so in
// LISTEN_FDNAMES ("connection" for Accept=yes), but systemd-socket-activate --accept does
// not, and guessing wrong loses the descriptor: listen() on a connected socket fails with
// EINVAL and Node then closes it. Linux shows the answer without touching the socket: its
// inode (from /proc/self/fd/N) is in /proc/self/net/tcp{,6} with state 0A when listening,
// or in /proc/self/net/unix with the __SO_ACCEPTCON flag (0x10000) when listening.
import { readFileSync, readlinkSync } from 'node:fs';

export type FdKind = 'listening' | 'connected' | 'not-socket' | 'unknown';

const TCP_LISTEN = '0A';
const SO_ACCEPTCON = 0x10000;

function socketInode(fd: number): string | null {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
    return m ? m[1]! : null;
  } catch {
    return null;
  }
}

function readTable(name: string): string[] {
  try {
    return readFileSync(`/proc/self/net/${name}`, 'utf8').split('\n').slice(1);
  } catch {
    return [];
  }
}

/** tcp/tcp6 rows: `sl local rem st queues tr retrnsmt uid timeout inode ...`. */
function inTcp(inode: string): FdKind | null {
  for (const table of ['tcp', 'tcp6']) {
    for (const row of readTable(table)) {
      const f = row.trim().split(/\s+/);
      if (f[9] === inode) return f[3] === TCP_LISTEN ? 'listening' : 'connected';
    }
  }
  return null;
}

/** unix rows: `Num RefCount Protocol Flags Type St Inode [Path]`. */
function inUnix(inode: string): FdKind | null {
  for (const row of readTable('unix')) {
    const f = row.trim().split(/\s+/);
    if (f[6] === inode) return (parseInt(f[3] ?? '0', 16) & SO_ACCEPTCON) !== 0 ? 'listening' : 'connected';
  }
  return null;
}

export function probeFd(fd: number): FdKind {
  const inode = socketInode(fd);
  if (inode === null) {
    try {
      readlinkSync(`/proc/self/fd/${fd}`);
      return 'not-socket';
    } catch {
      return 'unknown';
    }
  }
  return inTcp(inode) ?? inUnix(inode) ?? 'unknown';
}
