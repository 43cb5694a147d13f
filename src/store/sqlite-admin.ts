// The SQLite store's write side, for smmapctl, `smmapctl sync` and `import-cyrus`. It opens
// the file read-write (creating it, never its directory), migrates older formats, and
// keeps the WAL journal so the daemon's read-only connections see each commit whole.
// Every method takes Cyrus internal names; smmapctl converts what the admin types.
import { closeSync, constants, existsSync, fchownSync, lstatSync, openSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { deleteAclEntry, setAclEntry } from '../core/acl';
import { cascadePrefix, newMailboxAcl, prefixEnd } from '../core/mailbox-rules';
import { keepOwned } from './file-access';
import { APPLICATION_ID, checkFormat, errorText, isLocked, MIGRATIONS, SCHEMA_VERSION, SYNC_STATE_DDL } from './sqlite-schema';
import {
  AdminError, checkSnapshot, StoreError, withLimits, withUsage, type DenyEntry, type MailboxRow, type QuotaLimits, type QuotaState, type QuotaUsage,
  type Snapshot, type StoreAdmin,
} from './store';

export interface SqliteAdminOptions {
  /** How long to wait for another writer (or an exclusive lock) before failing. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /** Create the file when it does not exist (default true). */
  readonly create?: boolean;
  /**
   * Run as root, the user and group the daemon reads the store as (smmapd_user/smmapd_group):
   * a new store is theirs, and the store, -wal and -shm files are given back to them whenever
   * this handle opens or closes. Unset: a new store goes to the owner of its directory.
   */
  readonly owner?: { readonly uid: number; readonly gid: number };
}

// The write contract's types live with it (store.ts); named here too for older callers.
export { AdminError, type MailboxRow, type QuotaLimits, type QuotaUsage } from './store';

type Statement = Database.Statement<unknown[]>;
type QuotaRow = [string, number | null, number | null, number, number];

function quotaState(r: QuotaRow): QuotaState {
  return { root: r[0], storageLimitKiB: r[1], messageLimit: r[2], storageUsed: r[3], messageUsed: r[4] };
}

export class SqliteAdmin implements StoreAdmin {
  private readonly db: Database.Database;
  private readonly owner: SqliteAdminOptions['owner'];
  private readonly s: Record<
    | 'getMailbox' | 'insertMailbox' | 'insertSnapshotMailbox' | 'deleteMailbox' | 'deleteMailboxRange' | 'setAcl' | 'listMailboxes'
    | 'getQuota' | 'upsertQuota' | 'setUsage' | 'deleteQuota' | 'deleteQuotaRange' | 'listQuotas'
    | 'setDeny' | 'deleteDeny' | 'listDeny' | 'clearMailboxes' | 'clearQuotas',
    Statement
  >;

  constructor(
    readonly path: string,
    opts: SqliteAdminOptions = {},
  ) {
    const create = opts.create ?? true;
    this.owner = process.getuid?.() === 0 ? opts.owner : undefined;
    const link = lstatSync(path, { throwIfNoEntry: false });
    const isNew = link === undefined;
    let created: Stats | null = null;
    if (isNew) {
      const dir = dirname(path);
      if (!create) throw new StoreError(`store ${path} does not exist (smmapctl init creates it)`);
      if (!existsSync(dir)) throw new StoreError(`cannot create store ${path}: directory ${dir} does not exist`);
      if (!statSync(dir).isDirectory()) throw new StoreError(`cannot create store ${path}: ${dir} is not a directory`);
      created = createPrivate(path, this.owner);
    } else if (link.isSymbolicLink() && !existsSync(path)) {
      // A dangling link: SQLite would create whatever it points to, with our rights.
      throw new StoreError(`cannot create store ${path}: it is a symbolic link to a missing file`);
    }
    let db: Database.Database;
    try {
      db = new Database(path, { fileMustExist: !create, timeout: opts.busyTimeoutMs ?? 5000 });
    } catch (e) {
      throw new StoreError(`cannot open store ${path}: ${errorText(e)}`, { cause: e });
    }
    try {
      this.db = db;
      if (created !== null) {
        // Swapped for something else between our create and SQLite's open: do not write to it.
        const now = lstatSync(path, { throwIfNoEntry: false });
        if (now === undefined || !now.isFile() || now.ino !== created.ino || now.dev !== created.dev) {
          throw new StoreError(`cannot create store ${path}: the file was replaced while it was created`);
        }
      }
      // Before anything is written: SQLite gives new -wal and -shm files the store's owner.
      this.keepOwned();
      this.migrate();
      this.s = this.prepareAll();
    } catch (e) {
      db.close();
      throw this.wrap(e);
    }
  }

  /** Bring the file to SCHEMA_VERSION, one step per transaction. */
  private migrate(): void {
    const db = this.db;
    const from = checkFormat(db, this.path);
    // WAL: the daemon's readers never block on us, and see each commit whole.
    if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
    for (let v = from; v < SCHEMA_VERSION; v++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[v]!);
        db.pragma(`application_id = ${APPLICATION_ID}`);
        db.pragma(`user_version = ${v + 1}`);
      }).immediate();
    }
  }

  private prepareAll(): SqliteAdmin['s'] {
    const p = (sql: string): Statement => this.db.prepare(sql);
    const quotaCols = 'root, storage_limit_kib, message_limit, storage_used, message_used';
    return {
      getMailbox: p('SELECT acl FROM mailboxes WHERE name = ?').pluck(),
      insertMailbox: p('INSERT INTO mailboxes (name, acl) VALUES (?, ?)'),
      insertSnapshotMailbox: p('INSERT INTO mailboxes (name, acl, failure) VALUES (?, ?, ?)'),
      deleteMailbox: p('DELETE FROM mailboxes WHERE name = ?'),
      deleteMailboxRange: p('DELETE FROM mailboxes WHERE name >= ? AND name < ? RETURNING name').pluck(),
      setAcl: p('UPDATE mailboxes SET acl = ? WHERE name = ?'),
      listMailboxes: p('SELECT name, acl FROM mailboxes ORDER BY name').raw(),
      getQuota: p(`SELECT ${quotaCols} FROM quota_roots WHERE root = ?`).raw(),
      upsertQuota: p(`INSERT INTO quota_roots (${quotaCols}) VALUES (?, ?, ?, ?, ?)
                      ON CONFLICT (root) DO UPDATE SET storage_limit_kib = excluded.storage_limit_kib,
                        message_limit = excluded.message_limit, storage_used = excluded.storage_used,
                        message_used = excluded.message_used`),
      setUsage: p('UPDATE quota_roots SET storage_used = ?, message_used = ? WHERE root = ?'),
      deleteQuota: p('DELETE FROM quota_roots WHERE root = ?'),
      deleteQuotaRange: p('DELETE FROM quota_roots WHERE root >= ? AND root < ?'),
      listQuotas: p(`SELECT ${quotaCols} FROM quota_roots ORDER BY root`).raw(),
      setDeny: p(`INSERT INTO deny (userid, services, message) VALUES (?, ?, ?)
                  ON CONFLICT (userid) DO UPDATE SET services = excluded.services, message = excluded.message`),
      deleteDeny: p('DELETE FROM deny WHERE userid = ?'),
      listDeny: p('SELECT userid, services, message FROM deny ORDER BY userid').raw(),
      clearMailboxes: p('DELETE FROM mailboxes'),
      clearQuotas: p('DELETE FROM quota_roots'),
    };
  }

  /** SQLite failures become StoreError with the file named; our own errors pass through. */
  private wrap(e: unknown): Error {
    if (e instanceof StoreError || e instanceof AdminError) return e;
    if (isLocked(e)) return new StoreError(`store locked: ${this.path}: ${errorText(e)}`, { cause: e });
    if (typeof (e as { code?: unknown })?.code === 'string') {
      return new StoreError(`store ${this.path}: ${errorText(e)}`, { cause: e });
    }
    return e instanceof Error ? e : new Error(String(e));
  }

  /**
   * Run fn in one write transaction (BEGIN IMMEDIATE: the write lock up front, so two
   * writers queue instead of deadlocking). Any throw rolls everything back. Nests as a savepoint.
   */
  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (e) {
      throw this.wrap(e);
    }
  }

  private run<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw this.wrap(e);
    }
  }

  // --- mailboxes ---------------------------------------------------------------------------

  getMailbox(name: string): MailboxRow | null {
    const acl = this.run(() => this.s.getMailbox.get(name) as string | undefined);
    return acl === undefined ? null : { name, acl };
  }

  /** Every mailbox, in internal-name order. */
  listMailboxes(): MailboxRow[] {
    return this.run(() => (this.s.listMailboxes.all() as Array<[string, string]>).map(([name, acl]) => ({ name, acl })));
  }

  /**
   * Create one mailbox, never its parents. Without `acl` it gets what Cyrus gives a new
   * mailbox (behaviour §2): its nearest existing ancestor's ACL, all rights for a user INBOX's
   * owner, `anyone lrs` for a top-level shared folder. Returns the ACL it got.
   */
  createMailbox(name: string, acl?: string): string {
    if (name === '' || name.endsWith('!')) throw new AdminError('not a mailbox name', name);
    return this.transaction(() => {
      if (this.s.getMailbox.get(name) !== undefined) throw new AdminError('mailbox already exists', name);
      const theAcl = acl ?? newMailboxAcl(name, (p) => (this.s.getMailbox.get(p) as string | undefined) ?? null);
      this.s.insertMailbox.run(name, theAcl);
      return theAcl;
    });
  }

  /**
   * Delete one mailbox; a missing one is an error. Deleting a user's INBOX deletes the whole
   * user, as Cyrus's DELETE does: every folder below it and the quota roots at and below it.
   * Returns the names deleted.
   */
  deleteMailbox(name: string): string[] {
    return this.transaction(() => {
      if (this.s.deleteMailbox.run(name).changes === 0) throw new AdminError('mailbox does not exist', name);
      const deleted = [name];
      const below = cascadePrefix(name);
      if (below !== null) {
        deleted.push(...(this.s.deleteMailboxRange.all(below, prefixEnd(below)) as string[]));
        this.s.deleteQuota.run(name);
        this.s.deleteQuotaRange.run(below, prefixEnd(below));
      }
      return deleted;
    });
  }

  getAcl(name: string): string {
    const box = this.getMailbox(name);
    if (box === null) throw new AdminError('mailbox does not exist', name);
    return box.acl;
  }

  /** SETACL (rights may be `+x`, `-x`, a cyradm keyword; empty/none removes). Returns the new ACL. */
  setAcl(name: string, identifier: string, rights: string): string {
    return this.transaction(() => {
      const acl = setAclEntry(this.getAcl(name), identifier, rights);
      this.s.setAcl.run(acl, name);
      return acl;
    });
  }

  /** DELETEACL: an absent entry is fine; a missing mailbox is not. */
  deleteAcl(name: string, identifier: string): string {
    return this.transaction(() => {
      const acl = deleteAclEntry(this.getAcl(name), identifier);
      this.s.setAcl.run(acl, name);
      return acl;
    });
  }

  // --- quota roots -------------------------------------------------------------------------

  getQuota(root: string): QuotaState | null {
    const r = this.run(() => this.s.getQuota.get(root) as QuotaRow | undefined);
    return r === undefined ? null : quotaState(r);
  }

  listQuotas(): QuotaState[] {
    return this.run(() => (this.s.listQuotas.all() as QuotaRow[]).map(quotaState));
  }

  /** Create the root (need not be a mailbox; `example.com!` is a domain's) or change its limits. */
  setQuota(root: string, limits: QuotaLimits): QuotaState {
    withLimits(root, null, limits); // refuse bad input before taking the write lock
    return this.transaction(() => {
      const q = withLimits(root, this.getQuota(root), limits);
      this.s.upsertQuota.run(q.root, q.storageLimitKiB, q.messageLimit, q.storageUsed, q.messageUsed);
      return q;
    });
  }

  /** Record usage on an existing root (STORAGE in bytes). */
  setQuotaUsage(root: string, usage: QuotaUsage): QuotaState {
    return this.transaction(() => {
      const q = withUsage(root, this.getQuota(root), usage);
      this.s.setUsage.run(q.storageUsed, q.messageUsed, root);
      return q;
    });
  }

  /** Remove a quota root; removing one that is not there is fine (Cyrus). Returns whether it was there. */
  deleteQuota(root: string): boolean {
    return this.run(() => this.s.deleteQuota.run(root).changes > 0);
  }

  // --- user deny list ----------------------------------------------------------------------

  listDeny(): DenyEntry[] {
    return this.run(() =>
      (this.s.listDeny.all() as Array<[string, string, string]>).map(([userid, services, message]) => ({ userid, services, message })),
    );
  }

  /** Add or replace a user's entry; services default to `*`, '' message = the default text. */
  setDeny(userid: string, services = '*', message = ''): void {
    if (userid === '') throw new AdminError('empty userid');
    if (services === '' || /[\x00-\x1f\x7f]/.test(services)) throw new AdminError(`bad service list ${JSON.stringify(services)}`);
    this.run(() => this.s.setDeny.run(userid, services, message));
  }

  /** Removing a user who is not on the list is fine (Cyrus). Returns whether it was there. */
  removeDeny(userid: string): boolean {
    return this.run(() => this.s.deleteDeny.run(userid).changes > 0);
  }

  // --- whole-store swap --------------------------------------------------------------------

  /**
   * Replace every mailbox and quota root with the snapshot's, in ONE transaction: the
   * daemon sees the old content or the new, never a mix. The deny list is left alone.
   */
  replaceSnapshot(snap: Snapshot): void {
    checkSnapshot(snap);
    this.transaction(() => {
      this.s.clearMailboxes.run();
      this.s.clearQuotas.run();
      for (const m of snap.mailboxes) {
        try {
          this.s.insertSnapshotMailbox.run(m.name, m.acl, m.failure ?? null);
        } catch (e) {
          if (sqliteConstraint(e)) throw new AdminError('named twice in the snapshot', m.name);
          throw e;
        }
      }
      for (const q of snap.quotas) {
        this.s.upsertQuota.run(q.root, q.storageLimitKiB, q.messageLimit, q.storageUsed, q.messageUsed);
      }
      if (snap.synced !== undefined) {
        // in the same transaction: the time always belongs to the content it describes
        this.db.exec(SYNC_STATE_DDL);
        this.db.prepare('INSERT OR REPLACE INTO sync_state (id, synced_at, server) VALUES (1, ?, ?)').run(snap.synced.at, snap.synced.server);
      }
    });
  }

  close(): void {
    if (this.db.open) this.db.close();
    this.keepOwned();
  }

  /** The store and its -wal and -shm files stay readable by the daemon's user (root only). */
  private keepOwned(): void {
    if (this.owner === undefined) return;
    keepOwned([this.path, `${this.path}-wal`, `${this.path}-shm`], this.owner.uid, this.owner.gid);
  }
}

/**
 * Create the empty store file 0640 (less if the umask says so: it holds every mailbox name,
 * ACL, quota and deny entry), never through a symbolic link (O_EXCL | O_NOFOLLOW), and, when
 * root creates it, give it to `owner` (else to the owner of its directory) through the
 * descriptor, so the daemon, running as that user, can open it. SQLite gives its -wal and
 * -shm files the same mode, and the same owner whenever root recreates them (os_unix.c,
 * robustFchown).
 */
function createPrivate(path: string, owner: SqliteAdminOptions['owner']): Stats {
  let fd: number;
  try {
    fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, 0o640);
  } catch (e) {
    throw new StoreError(`cannot create store ${path}: ${errorText(e)}`, { cause: e });
  }
  try {
    if (owner !== undefined) {
      fchownSync(fd, owner.uid, owner.gid);
    } else if (process.getuid?.() === 0) {
      const dir = statSync(dirname(path));
      if (dir.uid !== 0 || dir.gid !== 0) fchownSync(fd, dir.uid, dir.gid);
    }
    return lstatSync(path);
  } finally {
    closeSync(fd);
  }
}

function sqliteConstraint(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT');
}

/** The write contract on a SQLite store file: what smmapctl opens (its store is always SQLite). */
export function openAdmin(path: string, opts: SqliteAdminOptions = {}): StoreAdmin {
  return new SqliteAdmin(path, opts);
}
