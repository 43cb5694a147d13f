// The in-memory store: both contracts (read: MailboxStore, write: StoreAdmin) over plain Maps,
// with the same rules as the SQLite store (governing quota root by Cyrus quota_findroot, the
// ACL a new mailbox gets and what a DELETE takes along, from core/mailbox-rules.ts). For tests
// and tools that need a store without a file: `async` answers as a Promise, as a networked
// store does; `fail` makes reads fail, as a broken one does; `calls` records what was asked.
import { deleteAclEntry, setAclEntry } from '../core/acl';
import { promised } from '../core/contract';
import { cascadePrefix, newMailboxAcl } from '../core/mailbox-rules';
import { quotaRootCandidates } from '../core/mboxname';
import {
  AdminError, checkSnapshot, StoreError, withLimits, withUsage, type DenyEntry, type MailboxRow, type MailboxState, type MailboxStore, type Maybe,
  type QuotaLimits, type QuotaState, type QuotaUsage, type Snapshot, type StoreAdmin,
} from './store';

export interface MemoryStoreOptions {
  /** Answer reads as Promises (default false: synchronously, like SQLite). */
  readonly async?: boolean;
  /** Reads of this kind throw (or, async, reject with) the error. */
  readonly fail?: { readonly deny?: Error; readonly mailbox?: Error };
}

interface Box {
  acl: string;
  failure: string | null;
}

export class MemoryStore implements MailboxStore, StoreAdmin {
  /** Every read, in order: `deny <userid>` and `mailbox <name>`. */
  readonly calls: string[] = [];
  /** The withAcl argument of each mailbox() read. */
  readonly aclWanted: Array<boolean | undefined> = [];
  private boxes = new Map<string, Box>();
  private quotas = new Map<string, QuotaState>();
  private deny = new Map<string, DenyEntry>();
  private version = 0;

  constructor(private readonly o: MemoryStoreOptions = {}) {}

  // --- read contract -----------------------------------------------------------------------

  denyEntry(userid: string): Maybe<DenyEntry | null> {
    this.calls.push(`deny ${userid}`);
    return this.answer(this.o.fail?.deny, () => this.deny.get(userid) ?? null);
  }

  mailbox(name: string, withAcl?: boolean): Maybe<MailboxState | null> {
    this.calls.push(`mailbox ${name}`);
    this.aclWanted.push(withAcl);
    return this.answer(this.o.fail?.mailbox, () => {
      const box = this.boxes.get(name);
      if (box === undefined) return null;
      if (box.failure !== null) throw new StoreError(`mailbox ${name}: not readable at the last sync: ${box.failure}`, { reply: 'mailbox unavailable' });
      return { acl: box.acl, quota: this.governing(name) };
    });
  }

  /** Moves with every change, as SQLite's data_version does. */
  changeCounter(): number {
    return this.version;
  }

  close(): void {}

  private answer<T>(failure: Error | undefined, read: () => T): Maybe<T> {
    if (!this.o.async) {
      if (failure !== undefined) throw failure;
      return read();
    }
    if (failure !== undefined) return Promise.reject(failure);
    return promised(() => Promise.resolve(read()));
  }

  private governing(name: string): QuotaState | null {
    for (const root of quotaRootCandidates(name)) {
      const q = this.quotas.get(root);
      if (q !== undefined) return q;
    }
    return null;
  }

  // --- write contract ----------------------------------------------------------------------

  transaction<T>(fn: () => T): T {
    const saved = [new Map(this.boxes), new Map(this.quotas), new Map(this.deny)] as const;
    try {
      return fn();
    } catch (e) {
      [this.boxes, this.quotas, this.deny] = saved;
      throw e;
    }
  }

  getMailbox(name: string): MailboxRow | null {
    const box = this.boxes.get(name);
    return box === undefined ? null : { name, acl: box.acl };
  }

  listMailboxes(): MailboxRow[] {
    return [...this.boxes.keys()].sort().map((name) => ({ name, acl: this.boxes.get(name)!.acl }));
  }

  createMailbox(name: string, acl?: string): string {
    if (name === '' || name.endsWith('!')) throw new AdminError('not a mailbox name', name);
    if (this.boxes.has(name)) throw new AdminError('mailbox already exists', name);
    const theAcl = acl ?? newMailboxAcl(name, (p) => this.boxes.get(p)?.acl ?? null);
    this.boxes.set(name, { acl: theAcl, failure: null });
    this.changed();
    return theAcl;
  }

  deleteMailbox(name: string): string[] {
    if (!this.boxes.delete(name)) throw new AdminError('mailbox does not exist', name);
    const deleted = [name];
    const below = cascadePrefix(name);
    if (below !== null) {
      for (const n of [...this.boxes.keys()].sort()) {
        if (n.startsWith(below)) (this.boxes.delete(n), deleted.push(n));
      }
      for (const r of [...this.quotas.keys()]) if (r === name || r.startsWith(below)) this.quotas.delete(r);
    }
    this.changed();
    return deleted;
  }

  getAcl(name: string): string {
    const box = this.boxes.get(name);
    if (box === undefined) throw new AdminError('mailbox does not exist', name);
    return box.acl;
  }

  setAcl(name: string, identifier: string, rights: string): string {
    const acl = setAclEntry(this.getAcl(name), identifier, rights);
    this.boxes.get(name)!.acl = acl;
    this.changed();
    return acl;
  }

  deleteAcl(name: string, identifier: string): string {
    const acl = deleteAclEntry(this.getAcl(name), identifier);
    this.boxes.get(name)!.acl = acl;
    this.changed();
    return acl;
  }

  getQuota(root: string): QuotaState | null {
    return this.quotas.get(root) ?? null;
  }

  listQuotas(): QuotaState[] {
    return [...this.quotas.keys()].sort().map((r) => this.quotas.get(r)!);
  }

  setQuota(root: string, limits: QuotaLimits): QuotaState {
    const q = withLimits(root, this.getQuota(root), limits);
    this.quotas.set(root, q);
    this.changed();
    return q;
  }

  setQuotaUsage(root: string, usage: QuotaUsage): QuotaState {
    const q = withUsage(root, this.getQuota(root), usage);
    this.quotas.set(root, q);
    this.changed();
    return q;
  }

  deleteQuota(root: string): boolean {
    const had = this.quotas.delete(root);
    this.changed();
    return had;
  }

  listDeny(): DenyEntry[] {
    return [...this.deny.keys()].sort().map((u) => this.deny.get(u)!);
  }

  setDeny(userid: string, services = '*', message = ''): void {
    if (userid === '') throw new AdminError('empty userid');
    this.deny.set(userid, { userid, services, message });
    this.changed();
  }

  removeDeny(userid: string): boolean {
    const had = this.deny.delete(userid);
    this.changed();
    return had;
  }

  /** The whole deny list at once, as given (no checks: a test may want an odd entry). */
  replaceDeny(entries: readonly DenyEntry[]): void {
    this.deny = new Map(entries.map((d) => [d.userid, d]));
    this.changed();
  }

  replaceSnapshot(snap: Snapshot): void {
    checkSnapshot(snap);
    const boxes = new Map<string, Box>();
    for (const m of snap.mailboxes) {
      if (boxes.has(m.name)) throw new AdminError('named twice in the snapshot', m.name);
      boxes.set(m.name, { acl: m.acl, failure: m.failure ?? null });
    }
    this.boxes = boxes;
    this.quotas = new Map(snap.quotas.map((q) => [q.root, q]));
    this.changed();
  }

  private changed(): void {
    this.version++;
  }
}

/** A memory store holding `snap`, and `deny` entries. */
export function memoryStore(snap: Snapshot, deny: readonly DenyEntry[] = [], o: MemoryStoreOptions = {}): MemoryStore {
  const s = new MemoryStore(o);
  s.replaceSnapshot(snap);
  s.replaceDeny(deny);
  return s;
}
