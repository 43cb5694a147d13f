// The unix socket files we bind: a stale one left by a dead daemon is removed at start, and
// the mode and owner (smmapd_unix_socket_*) are set at start and again on SIGHUP.
//
// The socket's directory may be writable by others (a 1777 /tmp, a shared run directory):
// whoever can write it can replace our socket with a symlink to any file, and root's chmod
// or chown by path would then change that file. So the path is opened with O_PATH|O_NOFOLLOW
// (which neither follows a link nor needs read access), the descriptor must be a socket with
// the device and inode we bound, and the mode and owner are changed through that descriptor
// (/proc/self/fd/N names exactly the inode we checked): no window between check and change.
import { chmodSync, chownSync, closeSync, constants, existsSync, fstatSync, lstatSync, openSync, unlinkSync, type Stats } from 'node:fs';
import net from 'node:net';
import type { Config } from '../config';
import type { Logger } from '../log';
import { ListenSpecError } from '../listen-spec';
import { lookupGroup, lookupUser } from './users';

/** open(2)'s O_PATH on Linux (not in fs.constants). */
const O_PATH = 0o10000000;

/** A unix socket left by a dead daemon is removed; one that answers is in use. */
export async function clearStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new ListenSpecError(`${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
  if (alive) throw new ListenSpecError(`${path} is in use by another process`);
  unlinkSync(path);
}

interface Identity {
  readonly dev: number;
  readonly ino: number;
}

function what(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isSocket()) return 'another socket';
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  return 'not a socket';
}

export class UnixSocketFile {
  /** The socket we bound, taken the first time it is secured (right after the bind). */
  private ours: Identity | null = null;

  constructor(readonly path: string) {}

  /**
   * Set mode and owner from the configuration, only on our own socket. False (and logged) when
   * the path is gone or is no longer our socket: nothing is changed then.
   */
  secure(cfg: Config, log: Logger): boolean {
    let fd: number;
    try {
      fd = openSync(this.path, O_PATH | constants.O_NOFOLLOW);
    } catch (e) {
      log.error(`cannot set owner or mode of ${this.path}: ${(e as Error).message}`);
      return false;
    }
    try {
      const st = fstatSync(fd);
      if (!st.isSocket() || (this.ours !== null && (st.dev !== this.ours.dev || st.ino !== this.ours.ino))) {
        log.error(`${this.path} is no longer our socket (now ${what(st)}): its mode and owner are left alone`);
        return false;
      }
      this.ours ??= { dev: st.dev, ino: st.ino };
      const byFd = `/proc/self/fd/${fd}`;
      chmodSync(byFd, cfg.unixSocketMode);
      if (cfg.unixSocketOwner !== '' || cfg.unixSocketGroup !== '') {
        const uid = cfg.unixSocketOwner !== '' ? lookupUser(cfg.unixSocketOwner) : -1;
        const gid = cfg.unixSocketGroup !== '' ? lookupGroup(cfg.unixSocketGroup) : -1;
        chownSync(byFd, uid, gid);
      }
      return true;
    } catch (e) {
      log.error(`cannot set owner or mode of ${this.path}: ${(e as Error).message}`);
      return false;
    } finally {
      closeSync(fd);
    }
  }
}
