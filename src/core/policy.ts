// The verification policy (behaviour §3): deny list, existence, anonymous post right on shared
// folders, quota — in that order — then `OK <key>`. Pure: the store is passed in, and the
// result is synchronous whenever the store's answers are.
import type { DenyEntry, MailboxState, MailboxStore, Maybe } from './contract';
import { StoreError } from './contract';
import { anonymousMayLookup, anonymousMayPost } from './acl';
import { isOverQuota } from './quota';
import { resolveRecipient, type ResolveOptions } from './recipient';
import {
  MSG_DENIED_DEFAULT, MSG_OVERQUOTA, MSG_PERMISSION, NONEXISTENT, storeFailure, type Reply,
} from './reply';
import { servicesDeny } from './wildmat';

export interface PolicyOptions {
  readonly resolve: ResolveOptions;
  /** Matched against deny-list service patterns; `smmapd` unless configured. */
  readonly serviceName: string;
  readonly overQuotaPerm: boolean;
}

function isPromise<T>(v: Maybe<T>): v is Promise<T> {
  return typeof (v as Promise<T> | null)?.then === 'function';
}

/** Control characters become spaces (Cyrus does this to deny messages). */
function deniedReply(entry: DenyEntry): Reply {
  // eslint-disable-next-line no-control-regex
  const text = (entry.message || MSG_DENIED_DEFAULT).replace(/[\x00-\x1f\x7f]/g, ' ');
  return { status: 'NOTFOUND', text, outcome: 'denied' };
}

function judgeMailbox(key: string, shared: boolean, box: MailboxState | null, o: PolicyOptions): Reply {
  if (box === null) return NONEXISTENT;
  // A user's own folders are never ACL-checked; shared folders need anonymous `p`.
  if (shared && !anonymousMayPost(box.acl)) {
    return anonymousMayLookup(box.acl) ? { status: 'PERM', text: MSG_PERMISSION, outcome: 'failed' } : NONEXISTENT;
  }
  if (box.quota !== null && isOverQuota(box.quota)) {
    return { status: o.overQuotaPerm ? 'PERM' : 'TEMP', text: MSG_OVERQUOTA, outcome: 'overquota' };
  }
  return { status: 'OK', text: key, outcome: 'ok' };
}

function failure(e: unknown): Reply {
  return storeFailure(e instanceof StoreError ? e.message : `store error: ${(e as Error)?.message ?? String(e)}`);
}

function guard<T>(v: () => Maybe<T>, then: (x: T) => Maybe<Reply>): Maybe<Reply> {
  let r: Maybe<T>;
  try {
    r = v();
  } catch (e) {
    return failure(e);
  }
  return isPromise(r) ? r.then(then, failure) : then(r);
}

/**
 * Answer one key. `key` is null when the request's key bytes were not valid UTF-8.
 * Never throws; a failing store gives TEMP.
 */
export function verify(key: string | null, store: MailboxStore, o: PolicyOptions): Maybe<Reply> {
  if (key === null) return NONEXISTENT;
  const rcpt = resolveRecipient(key, o.resolve);
  if (rcpt === null) return NONEXISTENT;
  const shared = rcpt.userid === null;
  const checkMailbox = (): Maybe<Reply> => guard(() => store.mailbox(rcpt.mailbox, shared), (box) => judgeMailbox(key, shared, box, o));
  if (shared) return checkMailbox();
  return guard(() => store.denyEntry(rcpt.userid!), (entry) =>
    entry !== null && servicesDeny(entry.services, o.serviceName) ? deniedReply(entry) : checkMailbox());
}

export { isPromise };
