// The store side of the contract: the core owns the read contract (src/core/contract.ts);
// this adds the write contract smmapctl administers a store through (StoreAdmin), and what the
// writers (`smmapctl sync`, `import-cyrus`) hand a store in one swap (Snapshot). Every name is
// a Cyrus internal name; smmapctl converts what the admin types.
export type { DenyEntry, MailboxState, MailboxStore, Maybe, QuotaState } from '../core/contract';
export { StoreError } from '../core/contract';
import type { DenyEntry, QuotaState } from '../core/contract';

/** A whole store's mailboxes and quota roots, as `smmapctl sync` and `import-cyrus` write it in one swap. */
export interface Snapshot {
  /** `failure`: the source could not describe this mailbox (why); its lookups answer TEMP. */
  readonly mailboxes: ReadonlyArray<{ readonly name: string; readonly acl: string; readonly failure?: string }>;
  readonly quotas: readonly QuotaState[];
  /** Set by `smmapctl sync`: when its round began (Unix seconds) and the server read; kept in the store. */
  readonly synced?: { readonly at: number; readonly server: string };
}

export interface MailboxRow {
  readonly name: string;
  readonly acl: string;
}

/** Limits to change; a resource left undefined keeps its limit (a new root: unlimited). null = unlimited. */
export interface QuotaLimits {
  readonly storageLimitKiB?: number | null;
  readonly messageLimit?: number | null;
}

export interface QuotaUsage {
  /** Bytes. */
  readonly storageUsed?: number;
  readonly messageUsed?: number;
}

/**
 * A request the store's content refuses (mailbox exists, no such mailbox, bad number): not an
 * I/O failure. `subject` is the internal name concerned, so smmapctl can show it as the admin wrote it.
 */
export class AdminError extends Error {
  constructor(
    readonly problem: string,
    readonly subject?: string,
  ) {
    super(subject === undefined ? problem : `${subject}: ${problem}`);
    this.name = 'AdminError';
  }
}

/**
 * The write contract: what smmapctl, `sync` and `import-cyrus` do to a store. Creating and
 * deleting follow Cyrus's rules (core/mailbox-rules.ts). Failures to reach the store throw
 * StoreError; refusals of the content throw AdminError.
 */
export interface StoreAdmin {
  /** Run fn as one transaction: all of it or none (nests). */
  transaction<T>(fn: () => T): T;
  getMailbox(name: string): MailboxRow | null;
  /** Every mailbox, in internal-name order. */
  listMailboxes(): MailboxRow[];
  /** Create one mailbox (never its parents); without `acl` the one Cyrus would give. Returns the ACL. */
  createMailbox(name: string, acl?: string): string;
  /** Delete one mailbox (a user INBOX takes the whole user along). Returns the names deleted. */
  deleteMailbox(name: string): string[];
  getAcl(name: string): string;
  /** SETACL (rights may be `+x`, `-x`, a cyradm keyword; empty/none removes). Returns the new ACL. */
  setAcl(name: string, identifier: string, rights: string): string;
  deleteAcl(name: string, identifier: string): string;
  getQuota(root: string): QuotaState | null;
  listQuotas(): QuotaState[];
  setQuota(root: string, limits: QuotaLimits): QuotaState;
  setQuotaUsage(root: string, usage: QuotaUsage): QuotaState;
  /** Returns whether it was there. */
  deleteQuota(root: string): boolean;
  listDeny(): DenyEntry[];
  setDeny(userid: string, services?: string, message?: string): void;
  removeDeny(userid: string): boolean;
  /** Replace every mailbox and quota root at once (the deny list stays). */
  replaceSnapshot(snap: Snapshot): void;
  close(): void;
}

/** A whole number from 0 (or null/undefined: unchanged or unlimited), else AdminError. */
export function checkCount(what: string, n: number | null | undefined): void {
  if (n === null || n === undefined) return;
  if (!Number.isSafeInteger(n) || n < 0) throw new AdminError(`${what}: want a whole number from 0, not ${n}`);
}

/** A root's state after SETQUOTA: limits given replace, limits left undefined stay (a new root: unlimited, unused). */
export function withLimits(root: string, old: QuotaState | null, limits: QuotaLimits): QuotaState {
  if (root === '') throw new AdminError('empty quota root');
  checkCount('storage limit', limits.storageLimitKiB);
  checkCount('message limit', limits.messageLimit);
  return {
    root,
    storageLimitKiB: limits.storageLimitKiB !== undefined ? limits.storageLimitKiB : (old?.storageLimitKiB ?? null),
    messageLimit: limits.messageLimit !== undefined ? limits.messageLimit : (old?.messageLimit ?? null),
    storageUsed: old?.storageUsed ?? 0,
    messageUsed: old?.messageUsed ?? 0,
  };
}

/** A root's state after recording usage (STORAGE in bytes); the root must exist. */
export function withUsage(root: string, old: QuotaState | null, usage: QuotaUsage): QuotaState {
  checkCount('storage usage', usage.storageUsed);
  checkCount('message usage', usage.messageUsed);
  if (old === null) throw new AdminError('no such quota root', root);
  return { ...old, storageUsed: usage.storageUsed ?? old.storageUsed, messageUsed: usage.messageUsed ?? old.messageUsed };
}

/** Every number of a snapshot's quota roots is a whole number from 0, else AdminError. */
export function checkSnapshot(snap: Snapshot): void {
  for (const q of snap.quotas) {
    checkCount(`${q.root}: storage limit`, q.storageLimitKiB);
    checkCount(`${q.root}: message limit`, q.messageLimit);
    checkCount(`${q.root}: storage usage`, q.storageUsed);
    checkCount(`${q.root}: message usage`, q.messageUsed);
  }
}
