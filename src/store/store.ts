// The store side of the contract: the core owns the read contract (src/core/contract.ts);
// this adds what the writers (`smmapctl sync`, `import-cyrus`) hand a store in one swap.
export type { DenyEntry, MailboxState, MailboxStore, Maybe, QuotaState } from '../core/contract';
export { StoreError } from '../core/contract';
import type { QuotaState } from '../core/contract';

/** A whole store's mailboxes and quota roots, as `smmapctl sync` and `import-cyrus` write it in one swap. */
export interface Snapshot {
  /** `failure`: the source could not describe this mailbox (why); its lookups answer TEMP. */
  readonly mailboxes: ReadonlyArray<{ readonly name: string; readonly acl: string; readonly failure?: string }>;
  readonly quotas: readonly QuotaState[];
}
