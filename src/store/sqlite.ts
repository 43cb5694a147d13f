// The default store driver: a read-only view of the SQLite file that smmapctl writes.
// Lookups are synchronous and run ~100k times a second, so every statement is prepared
// once and rows come back as plucked values or raw arrays. Failures never crash the
// daemon: a missing, unreadable, foreign or corrupt file, or one locked past the busy
// timeout, makes lookups throw StoreError (the reply is TEMP), and the driver reopens by
// itself, at most once per retry interval, so it recovers when the file is fixed. A file
// replaced by rename (a restored backup) or moved away is noticed by its inode, checked at
// most once a millisecond, so every process sees the same file.
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { quotaRootCandidates } from '../core/mboxname';
import { accessProblem } from './file-access';
import { checkFormat, errorText, isLocked, MIN_READ_VERSION, sqliteCode } from './sqlite-schema';
import type { Config } from '../config';
import { StoreError, type DenyEntry, type MailboxState, type MailboxStore, type QuotaState } from './store';
import type { StoreLog } from '../core/contract';

export interface SqliteStoreOptions {
  /** How long a lookup waits for a lock before it fails (cfg.storeBusyTimeoutMs). Default 500. */
  readonly busyTimeoutMs?: number;
  /** Shortest wait between two attempts to open a file that could not be opened. Default 1000. */
  readonly retryIntervalMs?: number;
  /** Told once per change of state: each new failure, and the recovery after one. */
  readonly log?: StoreLog;
}

type Statement = Database.Statement<unknown[]>;

/** One open connection and its prepared statements. */
interface Conn {
  readonly db: Database.Database;
  readonly acl: Statement;
  readonly quota: Statement;
  readonly deny: Statement;
  readonly dataVersion: Statement;
  readonly begin: Statement;
  readonly commit: Statement;
  readonly rollback: Statement;
  /** Distinguishes connections: data_version restarts with each one. */
  readonly epoch: number;
  /** The file it opened (-1: unknown, check again at once). */
  readonly dev: number;
  readonly ino: number;
}

/** Short words for the client (StoreError.reply); the log gets the path and the cause. */
const UNAVAILABLE = 'store unavailable';
const LOCKED = 'store locked';

/** [storage_limit_kib, message_limit, storage_used, message_used] */
type QuotaRow = [number | null, number | null, number, number];

export class SqliteStore implements MailboxStore {
  private conn: Conn | null = null;
  /** The connection whose read transaction is open for the current run of synchronous code. */
  private txnConn: Conn | null = null;
  private epoch = 0;
  /** The last open failure, rethrown until the next attempt is due. */
  private openError: StoreError | null = null;
  private nextAttempt = 0;
  /** The failure last reported to the log; null while healthy. */
  private failing: string | null = null;
  private closed = false;
  /**
   * Set when a lookup waited the whole busy timeout for a lock: until one succeeds, lookups
   * try the lock without waiting (busy_timeout 0), so a held lock costs one wait, not one
   * per lookup, and the worker keeps answering everyone else.
   */
  private lockError: StoreError | null = null;
  /** When the file's identity was last compared (ms). */
  private checkedAt = 0;
  private readonly busyTimeoutMs: number;
  private readonly retryIntervalMs: number;
  private readonly log: StoreLog;
  /** The sync_state query, prepared on the connection that found the table. */
  private syncStmt: { conn: Conn; stmt: Statement } | null = null;

  constructor(
    readonly path: string,
    opts: SqliteStoreOptions = {},
  ) {
    this.busyTimeoutMs = opts.busyTimeoutMs ?? 500;
    this.retryIntervalMs = opts.retryIntervalMs ?? 1000;
    this.log = opts.log ?? (() => undefined);
  }

  mailbox(name: string): MailboxState | null {
    const c = this.current();
    let result: MailboxState | null;
    let failure: string | null;
    try {
      this.snapshot(c);
      const row = c.acl.get(name) as [string, string | null] | undefined;
      failure = row?.[1] ?? null;
      result = row === undefined || failure !== null ? null : { acl: row[0], quota: findQuota(c, name) };
    } catch (e) {
      throw this.failed(c, e);
    }
    if (this.failing !== null || this.lockError !== null) this.recovered(c);
    // The replica holds this mailbox but not its state (sync could not read it): never guess.
    if (failure !== null) throw new StoreError(`mailbox ${name}: not readable on the IMAP server at the last sync: ${failure}`, { reply: 'mailbox unavailable' });
    return result;
  }

  denyEntry(userid: string): DenyEntry | null {
    const c = this.current();
    let row: [string, string] | undefined;
    try {
      this.snapshot(c);
      row = c.deny.get(userid) as [string, string] | undefined;
    } catch (e) {
      throw this.failed(c, e);
    }
    if (this.failing !== null || this.lockError !== null) this.recovered(c);
    return row === undefined ? null : { userid, services: row[0], message: row[1] };
  }

  /**
   * When `smmapctl sync` last wrote the store (its optional sync_state table), or null: read
   * at a scrape only. The table may appear after the connection opened, so it is looked for
   * until found.
   */
  lastSync(): number | null {
    try {
      const c = this.current();
      if (this.syncStmt?.conn !== c) {
        const exists = c.db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sync_state'`).get() !== undefined;
        if (!exists) return null;
        this.syncStmt = { conn: c, stmt: c.db.prepare('SELECT synced_at FROM sync_state WHERE id = 1').pluck() };
      }
      const v = this.syncStmt.stmt.get();
      return typeof v === 'number' ? v : null;
    } catch {
      return null; // store unavailable: lookups report it
    }
  }

  /**
   * PRAGMA data_version, made unique across reconnections. NaN when the store cannot be
   * read: NaN equals nothing, so a cache keyed on it never serves a stale answer.
   */
  changeCounter(): number {
    try {
      const c = this.current();
      this.snapshot(c);
      return c.epoch * 2 ** 32 + (c.dataVersion.get() as number);
    } catch (e) {
      if (this.conn !== null && !(e instanceof StoreError)) this.failed(this.conn, e);
      return NaN;
    }
  }

  close(): void {
    this.closed = true;
    this.drop();
  }

  /**
   * The open connection, if it still reads the file at the path; else a new one. Inside a
   * run of code that already reads a snapshot nothing is checked; otherwise the path is
   * stat()ed at most once a millisecond (~1 µs): a rename over the store or its removal is
   * noticed as cheaply as data_version, and the epoch change empties the answer cache.
   */
  private current(): Conn {
    const c = this.conn;
    if (c === null) return this.connect();
    if (this.txnConn === c) return c;
    const now = Date.now();
    if (now === this.checkedAt && c.ino !== -1) return c;
    this.checkedAt = now;
    const st = statSync(this.path, { throwIfNoEntry: false });
    if (st !== undefined && st.ino === c.ino && st.dev === c.dev) return c;
    // Replaced or gone: the old inode's content is no longer the store. Reopen now (a
    // vanished file fails to open: TEMP, retried once per interval).
    this.log(st === undefined ? `store file gone: ${this.path}` : `store file replaced, reopening: ${this.path}`);
    this.drop();
    return this.connect();
  }

  /**
   * Every lookup made in one run of synchronous code (one chunk of requests) reads one
   * snapshot: the first opens a read transaction and a microtask ends it as soon as that
   * code returns to the event loop, so it is never held across I/O. Consistency: a mailbox,
   * its quota root, and the change counter the answer cache checks all come from the same
   * commit, never half of a concurrent replaceSnapshot. Speed: taking the WAL read lock
   * (fcntl and fstat calls) once per chunk rather than per statement is what makes the
   * difference (several times faster with pipelined requests).
   */
  private snapshot(c: Conn): void {
    if (this.txnConn === c) return;
    c.begin.run();
    this.txnConn = c;
    queueMicrotask(this.endSnapshot);
  }

  private readonly endSnapshot = (): void => {
    const c = this.txnConn;
    this.txnConn = null;
    if (c === null || !c.db.open || !c.db.inTransaction) return;
    try {
      c.commit.run();
    } catch {
      // A read transaction has nothing to lose: roll back and let the next lookup start afresh.
      try {
        c.rollback.run();
      } catch {
        // the connection is broken; the next lookup will say so
      }
    }
  };

  /** Open the file now, or throw the reason it cannot be (at most one attempt per interval). */
  private connect(): Conn {
    if (this.closed) throw new StoreError(`store closed: ${this.path}`, { reply: UNAVAILABLE });
    const now = Date.now();
    if (this.openError !== null && now < this.nextAttempt) throw this.openError;
    let db: Database.Database | null = null;
    try {
      const before = statSync(this.path, { throwIfNoEntry: false });
      db = new Database(this.path, { readonly: true, fileMustExist: true, timeout: this.lockError ? 0 : this.busyTimeoutMs });
      // Replaced between the two stats: identity unknown, so the next lookup checks again.
      const after = statSync(this.path, { throwIfNoEntry: false });
      const same = before !== undefined && after !== undefined && before.ino === after.ino && before.dev === after.dev;
      const version = checkFormat(db, this.path);
      if (version < MIN_READ_VERSION) {
        throw new StoreError(
          version === 0
            ? `${this.path}: empty store (smmapctl init creates its tables)`
            : `${this.path}: store format ${version} is older than this smmapd reads (${MIN_READ_VERSION}): run smmapctl init to upgrade it`,
        );
      }
      const conn: Conn = {
        db,
        acl: db.prepare(`SELECT acl, ${version >= 2 ? 'failure' : 'NULL'} FROM mailboxes WHERE name = ?`).raw(),
        quota: db
          .prepare('SELECT storage_limit_kib, message_limit, storage_used, message_used FROM quota_roots WHERE root = ?')
          .raw(),
        deny: db.prepare('SELECT services, message FROM deny WHERE userid = ?').raw(),
        dataVersion: db.prepare('PRAGMA data_version').pluck(),
        begin: db.prepare('BEGIN'),
        commit: db.prepare('COMMIT'),
        rollback: db.prepare('ROLLBACK'),
        epoch: ++this.epoch,
        dev: same ? after.dev : -1,
        ino: same ? after.ino : -1,
      };
      this.conn = conn;
      this.openError = null;
      return conn;
    } catch (e) {
      try {
        db?.close();
      } catch {
        // already unusable
      }
      const err = this.describe(e);
      // A lock already made us wait the busy timeout: try again (without waiting) at the next lookup.
      this.nextAttempt = isLocked(e) ? now : now + this.retryIntervalMs;
      this.openError = err;
      this.report(err.message);
      throw err;
    }
  }

  /** Turn a lookup's exception into a StoreError; keep the connection only if it was a lock. */
  private failed(c: Conn, e: unknown): StoreError {
    if (this.txnConn === c) this.txnConn = null;
    try {
      if (c.db.inTransaction) c.rollback.run();
    } catch {
      // the connection is going anyway
    }
    const err = this.describe(e);
    if (!isLocked(e)) {
      // Corrupt, I/O error, schema gone: start over with a fresh open (throttled).
      this.drop();
      this.openError = err;
      this.nextAttempt = Date.now() + this.retryIntervalMs;
    }
    this.report(err.message);
    return err;
  }

  private describe(e: unknown): StoreError {
    if (isLocked(e)) {
      if (this.lockError === null) {
        this.lockError = new StoreError(`store locked: ${this.path}: ${errorText(e)} (waited ${this.busyTimeoutMs} ms)`, { cause: e, reply: LOCKED });
        // From now on try the lock without waiting, until a lookup gets through.
        if (this.conn !== null) setBusyTimeout(this.conn, 0);
      }
      return this.lockError;
    }
    if (e instanceof StoreError) return new StoreError(`store unavailable: ${e.message}`, { cause: e, reply: UNAVAILABLE });
    return new StoreError(`store unavailable: ${this.path}: ${errorText(e)}${this.accessHint(e)}`, { cause: e, reply: UNAVAILABLE });
  }

  /**
   * A file this process may not open, said as what it is: the owner and mode found, and the
   * user we run as (smmapd_user). Looked at only on a failure (at most once per retry interval).
   */
  private accessHint(e: unknown): string {
    const code = sqliteCode(e);
    const denied = ['SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_PERM', 'EACCES', 'EPERM'].some((c) => code.startsWith(c));
    if (!denied) return '';
    const problem = accessProblem(this.path);
    if (problem !== null) return ` (${problem})`;
    // A WAL reader must create (or write) the -shm file next to the store.
    return code.startsWith('SQLITE_READONLY') ? ' (the daemon needs write access to the store directory, or to existing -wal and -shm files)' : '';
  }

  private report(msg: string): void {
    if (msg === this.failing) return;
    this.failing = msg;
    this.log(msg);
  }

  private recovered(c: Conn): void {
    if (this.lockError !== null) {
      this.lockError = null;
      setBusyTimeout(c, this.busyTimeoutMs);
    }
    if (this.failing === null) return;
    this.failing = null;
    this.log(`store available again: ${this.path}`, 'notice');
  }

  private drop(): void {
    const c = this.conn;
    this.conn = null;
    this.txnConn = null;
    if (c === null) return;
    try {
      c.db.close();
    } catch {
      // closing a broken connection may fail; it is gone either way
    }
  }
}

function setBusyTimeout(c: Conn, ms: number): void {
  try {
    c.db.pragma(`busy_timeout = ${ms}`);
  } catch {
    // a broken connection: the next lookup reports it
  }
}

/** Cyrus quota_findroot: the mailbox, each parent, then the domain root; the first that is a root governs. */
function findQuota(c: Conn, name: string): QuotaState | null {
  for (const root of quotaRootCandidates(name)) {
    const row = c.quota.get(root) as QuotaRow | undefined;
    if (row !== undefined) {
      return { root, storageLimitKiB: row[0], messageLimit: row[1], storageUsed: row[2], messageUsed: row[3] };
    }
  }
  return null;
}


/** The registry's entry point: the read-only store on cfg.store, with the configured busy timeout. */
export function openStore(cfg: Config, log?: StoreLog): SqliteStore {
  return new SqliteStore(cfg.store, { busyTimeoutMs: cfg.storeBusyTimeoutMs, ...(log ? { log } : {}) });
}
