// Started as root (to bind a port below 1024, or a socket in a root-owned directory), the
// processes that read clients' input run as `smmapd_user`/`smmapd_group` once their sockets
// are bound, as Postfix's and Cyrus's daemons do. Not root: nothing to drop.
import type { Config } from '../config';
import type { Logger } from '../log';
import { lookupGroup, userEntry } from './users';

export class PrivilegeError extends Error {
  override readonly name = 'PrivilegeError';
}

const ROOT_UID = 0;

export const isRoot = (): boolean => process.getuid?.() === ROOT_UID;

/**
 * Become smmapd_user (and smmapd_group, else the user's primary group; supplementary groups
 * as the system lists them). Unset: stay, and say so once when `warnIfRoot`. Throws
 * PrivilegeError when the user or group is unknown or the switch fails: never serve as root
 * by accident when a user was asked for.
 */
export function dropPrivileges(cfg: Config, log: Logger, warnIfRoot: boolean): void {
  if (!isRoot()) return;
  if (cfg.runUser === '') {
    if (warnIfRoot) log.warning('running as root: set smmapd_user (and smmapd_group) to run as an unprivileged user once the sockets are bound');
    return;
  }
  try {
    const user = userEntry(cfg.runUser);
    const gid = cfg.runGroup !== '' ? lookupGroup(cfg.runGroup) : user.gid;
    if (gid < 0) throw new Error(`smmapd_user ${cfg.runUser} is not in /etc/passwd: set smmapd_group as well`);
    if (/^\d+$/.test(cfg.runUser)) process.setgroups?.([gid]);
    else (process as { initgroups?: (user: string, extra: number) => void }).initgroups?.(cfg.runUser, gid);
    process.setgid?.(gid);
    process.setuid?.(user.uid);
    if (process.getuid?.() !== user.uid || process.getgid?.() !== gid) throw new Error('the ids did not change');
    log.debug(`running as ${cfg.runUser} (uid ${user.uid}, gid ${gid})`);
  } catch (e) {
    throw new PrivilegeError(`cannot run as smmapd_user ${cfg.runUser}${cfg.runGroup !== '' ? `, smmapd_group ${cfg.runGroup}` : ''}: ${(e as Error).message}`);
  }
}
