// Who may open the store's files. Root's smmapctl writes must leave them to the user the
// daemon runs as (smmapd_user), and a daemon that cannot open them must say why in terms an
// admin can act on: the owner and mode it found, and who it is. Never through a symbolic
// link: every chown here goes through a descriptor opened with O_NOFOLLOW.
import { accessSync, closeSync, constants, fchownSync, fstatSync, mkdirSync, openSync, readFileSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';

/** A uid or gid as a name from /etc/passwd or /etc/group; the number when it has none. */
function nameOf(file: string, id: number): string {
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[2] !== undefined && Number(f[2]) === id && f[0] !== '') return f[0]!;
    }
  } catch {
    // no such file: the number is all we can say
  }
  return String(id);
}

export const userName = (uid: number): string => nameOf('/etc/passwd', uid);
export const groupName = (gid: number): string => nameOf('/etc/group', gid);

/** `root:root, mode 0640` */
function ownerMode(st: Stats): string {
  return `${userName(st.uid)}:${groupName(st.gid)}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}`;
}

/** `nobody:nogroup (uid 65534, gid 65534)`: this process. */
export function whoAmI(): string {
  const uid = process.getuid?.() ?? -1;
  const gid = process.getgid?.() ?? -1;
  return `${userName(uid)}:${groupName(gid)} (uid ${uid}, gid ${gid})`;
}

function can(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

/**
 * Why this process may not open the SQLite store at `path` for reading, when permissions are
 * the reason: the first directory it cannot search, the file it cannot read, or the -shm
 * file (or the directory to create it in) it cannot write, as a WAL reader must. null when
 * the permissions are not the problem (a missing file, say).
 */
export function accessProblem(path: string): string | null {
  const me = whoAmI();
  const dirs: string[] = [];
  for (let d = dirname(path); ; d = dirname(d)) {
    dirs.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of dirs) {
    const st = statOrNull(d);
    if (st === null) return null;
    if (!can(d, constants.X_OK)) return `directory ${d} is ${ownerMode(st)}: ${me} cannot enter it`;
  }
  const file = statOrNull(path);
  if (file === null) return null;
  if (!can(path, constants.R_OK)) return `the store is ${ownerMode(file)}: ${me} cannot read it`;
  const wal = statOrNull(`${path}-wal`);
  if (wal !== null && !can(`${path}-wal`, constants.R_OK)) return `${path}-wal is ${ownerMode(wal)}: ${me} cannot read it`;
  const shm = statOrNull(`${path}-shm`);
  if (shm !== null && !can(`${path}-shm`, constants.W_OK)) return `${path}-shm is ${ownerMode(shm)}: ${me} cannot write it`;
  const dir = dirname(path);
  if (shm === null && !can(dir, constants.W_OK)) {
    return `${path}-shm does not exist and directory ${dir} is ${ownerMode(statSync(dir))}: ${me} cannot create it`;
  }
  return null;
}

/**
 * Give each existing regular file of `paths` to uid:gid (root only), through a descriptor
 * opened without following a link; a link, a missing file or anything else is left alone.
 */
export function keepOwned(paths: readonly string[], uid: number, gid: number): void {
  for (const p of paths) {
    let fd: number;
    try {
      fd = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      continue; // gone (SQLite removes -wal and -shm at its last close), or a link
    }
    try {
      const st = fstatSync(fd);
      if (st.isFile() && (st.uid !== uid || st.gid !== gid)) fchownSync(fd, uid, gid);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Create directory `dir` 0750 (less as the umask says) when it does not exist, its parent
 * only if that exists, and give it to `owner` through a descriptor that follows no link.
 * Returns whether it created it.
 */
export function makePrivateDirectory(dir: string, owner: { uid: number; gid: number } | undefined): boolean {
  try {
    mkdirSync(dir, 0o750);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new Error(`cannot create directory ${dir}: ${(e as Error).message}`);
  }
  if (owner !== undefined) {
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      fchownSync(fd, owner.uid, owner.gid);
    } finally {
      closeSync(fd);
    }
  }
  return true;
}
