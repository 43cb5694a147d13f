// The store contract, owned by the core: what the checks ask of any mailbox store (Postfix's
// dict_*.c is the model: one interface, many small drivers in src/store). Names are Cyrus internal mailbox names
// (`example.com!user.fred^smith.sub`, `shared.pub`, a domain root `example.com!`).

/** A quota root's limits (absent = unlimited) and usage. */
export interface QuotaState {
  readonly root: string;
  readonly storageLimitKiB: number | null;
  readonly messageLimit: number | null;
  /** Bytes. Stores that only know KiB (IMAP) report KiB × 1024 (behaviour §3). */
  readonly storageUsed: number;
  readonly messageUsed: number;
}

/** What the checks need to know of an existing mailbox. */
export interface MailboxState {
  /** Cyrus ACL text: `identifier\trights\t` pairs. */
  readonly acl: string;
  /** The quota root that governs the mailbox, or null when none does. */
  readonly quota: QuotaState | null;
  /**
   * The mailbox exists and its ACL is known, but its quota could not be read (a Cyrus Murder
   * backend down): the few words of a TEMP reply, given only when the checks reach the quota.
   */
  readonly quotaFailure?: string;
}

export interface DenyEntry {
  readonly userid: string;
  /** Comma-separated wildmat patterns, `*` when added without services. */
  readonly services: string;
  /** '' means the default message. */
  readonly message: string;
}

/** A value now, or later: the SQLite store answers synchronously, the IMAP store does not. */
export type Maybe<T> = T | Promise<T>;

/** Whether a Maybe is the promise: the synchronous path must not pay for one. */
export function isPromise<T>(v: Maybe<T>): v is Promise<T> {
  return typeof (v as Promise<T> | null)?.then === 'function';
}

/** `f()`'s promise, a synchronous throw in `f` as its rejection (callers chain on it either way). */
export function promised<T>(f: () => Promise<T>): Promise<T> {
  try {
    return f();
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * The store could not answer (missing, locked, corrupt, unreachable): the reply is TEMP, never
 * OK. `message` is for the log (paths, causes); `reply` is what the client is told: a few
 * words, one line, no paths (`store unavailable`, `store locked`, `IMAP server unavailable`).
 */
export class StoreError extends Error {
  readonly reply: string;
  constructor(message: string, options?: { cause?: unknown; reply?: string }) {
    super(message, options);
    this.name = 'StoreError';
    this.reply = replyText(options?.reply ?? message);
  }
}

/** The words before the first colon, one line, printable ASCII, no path: safe to send. */
function replyText(text: string): string {
  const head = text.split(/[:\r\n]/, 1)[0]!.replace(/[^\x20-\x7e]/g, ' ').trim().slice(0, 80);
  return head === '' || head.includes('/') ? 'store unavailable' : head;
}

export interface MailboxStore {
  /** The user deny entry for a userid, or null. */
  denyEntry(userid: string): Maybe<DenyEntry | null>;
  /**
   * The mailbox's ACL and governing quota root, or null when it does not exist. Throws
   * StoreError. `withAcl` false: the caller will not read the ACL (a user's own folders are
   * never ACL-checked), so a store for which it costs a round trip may leave it ''.
   */
  mailbox(name: string, withAcl?: boolean): Maybe<MailboxState | null>;
  /**
   * A number that changes whenever the store's content may have changed, so answers can be
   * cached exactly (SQLite's PRAGMA data_version). Absent when the store cannot tell: callers
   * then cache only with TTLs.
   */
  changeCounter?(): number;
  /** When `smmapctl sync` last wrote this store (Unix seconds), null if never or unknown; for /metrics. */
  lastSync?(): number | null;
  close(): Maybe<void>;
}

/** The naming options a recipient is resolved with (Cyrus's `virtdomains`). */
export type VirtDomains = 'off' | 'userid' | 'on';

/**
 * A lookup table (Postfix's dict: a SQL or LDAP directory behind `smmapd_map_NAME`): the
 * result Postfix's own table gives for the key (several values already joined with commas),
 * or null when there is none. Throws StoreError when the directory cannot answer.
 */
export interface LookupTable {
  /**
   * `until`: the lookup's deadline (a Date.now() time, smmapd_maps_timeout from the
   * request); a table that talks to a server abandons its query there.
   */
  lookup(key: string, until?: number): Maybe<string | null>;
  /**
   * For `smmapctl explain --map`: what a lookup of `key` sends (the SQL query, the LDAP base
   * and filter) with the key quoted as the driver quotes it, or null when Postfix's rules
   * skip the lookup (domain list, a template the key cannot fill). Sends nothing.
   */
  describe?(key: string): string | null;
  /** The directory's hosts in order, with failures since the last success (0: up); for /metrics. */
  hostStates?(): ReadonlyArray<{ readonly name: string; readonly failures: number }>;
  close(): Maybe<void>;
}

/**
 * How a store or table reports what the log should know: errors by default; `notice` for a
 * recovery (available again), `warning` for what is ignored. `limit`: a key for a line that
 * requests can cause (a query failing on a client's key, a host going down and up), so that
 * the daemon bounds such lines per key; none for lines with their own bound (start-up, a
 * reopen). The daemon maps it to its logger.
 */
export type StoreLog = (msg: string, level?: 'error' | 'warning' | 'notice', limit?: string) => void;
