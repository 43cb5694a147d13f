// What every smmapctl command gets: the configuration, the name conventions the admin
// writes in, the store (opened on first use), and where its output goes.
import { separatorOf, type Config } from '../config';
import { AclError } from '../core/acl';
import { NameError, type NameOptions } from '../core/mboxname';
import { lookupGroup, userEntry } from '../server/users';
import { openAdmin } from '../store/sqlite-admin';
import type { StoreAdmin } from '../store/store';

/** Bad arguments: exit 64 (EX_USAGE). */
export class UsageError extends Error {}

export const EX_USAGE = 64;
export const EX_FAILURE = 1;

/** The exit code an error deserves: 64 for what the admin typed wrong, 1 for everything else. */
export function exitCodeOf(e: unknown): number {
  return e instanceof UsageError || e instanceof NameError || e instanceof AclError ? EX_USAGE : EX_FAILURE;
}

export class CtlContext {
  readonly names: NameOptions;
  private admin: StoreAdmin | null = null;

  constructor(
    readonly cfg: Config,
    /** One line of output (no newline). `batch` swaps it to hold output until its commit. */
    public out: (line: string) => void,
  ) {
    this.names = { separator: separatorOf(cfg), virtdomains: cfg.virtdomains, defaultdomain: cfg.defaultdomain };
  }

  /**
   * The store, read-write. Commands that change it create the file when missing; listing
   * commands do not (a typo in smmapd_store should not leave a stray empty store behind).
   */
  store(create: boolean): StoreAdmin {
    if (this.admin === null) {
      const owner = storeOwner(this.cfg);
      this.admin = openAdmin(this.cfg.store, { create, busyTimeoutMs: Math.max(5000, this.cfg.storeBusyTimeoutMs), ...(owner ? { owner } : {}) });
    }
    return this.admin;
  }

  close(): void {
    this.admin?.close();
    this.admin = null;
  }
}

/**
 * Run as root with smmapd_user set: the user and group the daemon reads the store as
 * (smmapd_group, else the user's primary group), whom every file smmapctl writes goes to.
 */
export function storeOwner(cfg: Config): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0 || cfg.runUser === '') return undefined;
  try {
    const user = userEntry(cfg.runUser);
    return { uid: user.uid, gid: cfg.runGroup !== '' ? lookupGroup(cfg.runGroup) : user.gid };
  } catch (e) {
    throw new Error(`smmapd_user ${cfg.runUser}${cfg.runGroup !== '' ? `, smmapd_group ${cfg.runGroup}` : ''}: ${(e as Error).message} (the store is written for that user)`);
  }
}
