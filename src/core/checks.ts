// The recipient checks (behaviour §3): deny list, existence, anonymous post right on shared
// folders, quota — in that order — then `OK <key>`. Pure: the store is passed in, and the
// result is synchronous whenever the store's answers are.
import type { DenyEntry, MailboxState, MailboxStore, Maybe, QuotaState } from './contract';
import { isPromise, StoreError } from './contract';
import { anonymousMayLookup, anonymousMayPost, anonymousRights, maskToRights } from './acl';
import { isMessageOver, isOverQuota, isStorageOver, KIB } from './quota';
import { quotaVerdict, type QuotaVerdict, type SizedCheck } from './quota-verdict';
import { resolveRecipient, type ResolveOptions } from './recipient';
import {
  MSG_DENIED_DEFAULT, MSG_OVERQUOTA, MSG_PERMISSION, NONEXISTENT, storeFailure, type Reply,
} from './reply';
import type { Trace } from './trace';
import { servicesDeny } from './wildmat';

export interface CheckOptions {
  readonly resolve: ResolveOptions;
  /** Matched against deny-list service patterns; `smmapd` unless configured. */
  readonly serviceName: string;
  readonly overQuotaPerm: boolean;
}

/** Control characters become spaces (Cyrus does this to deny messages). */
function deniedReply(entry: DenyEntry): Reply {
  const text = (entry.message || MSG_DENIED_DEFAULT).replace(/[\x00-\x1f\x7f]/g, ' ');
  return { status: 'NOTFOUND', text, outcome: 'denied' };
}

/** A reply with the size-aware quota verdict when one was asked for (the policy service). */
export interface CheckResult extends Reply {
  readonly quota?: QuotaVerdict;
}

function judgeMailbox(key: string, shared: boolean, box: MailboxState | null, o: CheckOptions, sized: SizedCheck | null, t: Trace | undefined): CheckResult {
  if (t !== undefined) traceMailbox(t, shared, box);
  if (box === null) return NONEXISTENT;
  // A user's own folders are never ACL-checked; shared folders need anonymous `p`.
  if (shared && !anonymousMayPost(box.acl)) {
    return anonymousMayLookup(box.acl) ? { status: 'PERM', text: MSG_PERMISSION, outcome: 'failed' } : NONEXISTENT;
  }
  // Existence and the ACL were known without the quota (a Murder frontend with a backend down).
  if (box.quotaFailure !== undefined) {
    t?.('quota', `unknown: ${box.quotaFailure}`);
    return storeFailure(box.quotaFailure);
  }
  if (box.quota !== null) {
    const v: QuotaVerdict = sized === null ? (isOverQuota(box.quota) ? 'over' : 'room') : quotaVerdict(box.quota, sized);
    if (t !== undefined) traceQuota(t, box.quota, sized, v);
    if (v !== 'room') {
      const r = { status: o.overQuotaPerm ? 'PERM' : 'TEMP', text: MSG_OVERQUOTA, outcome: 'overquota' } as const;
      return sized === null ? r : { ...r, quota: v };
    }
  } else if (t !== undefined) t('quota', 'no quota root governs the mailbox');
  return { status: 'OK', text: key, outcome: 'ok' };
}

function traceMailbox(t: Trace, shared: boolean, box: MailboxState | null): void {
  t('exists', box === null ? 'no: the mailbox does not exist' : 'yes');
  if (box === null || !shared) return;
  const rights = maskToRights(anonymousRights(box.acl));
  t('acl', `anonymous holds "${rights}" on the shared folder (ACL ${JSON.stringify(box.acl)}): ` +
    (anonymousMayPost(box.acl) ? 'p: may post' : anonymousMayLookup(box.acl) ? 'l without p: Permission denied' : 'neither l nor p: as if it did not exist'));
}

function traceQuota(t: Trace, q: QuotaState, sized: SizedCheck | null, v: QuotaVerdict): void {
  const storage = q.storageLimitKiB === null ? 'unlimited' : `${q.storageLimitKiB} KiB (${q.storageLimitKiB * KIB} bytes)`;
  const messages = q.messageLimit === null ? 'unlimited' : String(q.messageLimit);
  t('quota root', `${q.root}: storage ${q.storageUsed} bytes used of ${storage}, messages ${q.messageUsed} of ${messages}`);
  const why = sized === null
    ? `storage ${isStorageOver(q) ? 'over' : 'within'} the limit, one more message ${isMessageOver(q) ? 'over' : 'within'} the limit`
    : `with this message of ${sized.size} bytes (grace ${sized.gracePercent}%)`;
  t('quota', `${v === 'room' ? 'room' : v === 'over' ? 'over quota' : 'message larger than the whole limit'}: ${why}`);
}

/** TEMP with the store's few words; the details (paths, causes) are the store's to log. */
function failure(e: unknown): Reply {
  return storeFailure(e instanceof StoreError ? e.reply : 'store error');
}

function guard<T>(v: () => Maybe<T>, then: (x: T) => Maybe<CheckResult>): Maybe<CheckResult> {
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
export function verify(key: string | null, store: MailboxStore, o: CheckOptions): Maybe<Reply> {
  return check(key, store, o, null, undefined);
}

/**
 * The one implementation of the checks. `sized`: the message size is known (policy
 * service), so quota is judged as lmtpd with lmtp_strict_quota does and the verdict is
 * returned with the reply. `t`: record every step (smmapctl explain).
 */
export function check(key: string | null, store: MailboxStore, o: CheckOptions, sized: SizedCheck | null, t?: Trace): Maybe<CheckResult> {
  if (key === null) {
    t?.('key', 'not valid UTF-8: names no mailbox');
    return NONEXISTENT;
  }
  const rcpt = resolveRecipient(key, o.resolve, t);
  if (rcpt === null) {
    t?.('mailbox', 'the key names no mailbox');
    return NONEXISTENT;
  }
  const shared = rcpt.userid === null;
  if (t !== undefined) t('mailbox', `${rcpt.mailbox} (${shared ? 'a shared folder' : `owned by ${rcpt.userid}`})`);
  const checkMailbox = (): Maybe<CheckResult> => guard(() => store.mailbox(rcpt.mailbox, shared), (box) => judgeMailbox(key, shared, box, o, sized, t));
  if (shared) return checkMailbox();
  return guard(() => store.denyEntry(rcpt.userid!), (entry) => {
    const denied = entry !== null && servicesDeny(entry.services, o.serviceName);
    if (t !== undefined) {
      t('deny', entry === null ? `no deny entry for ${rcpt.userid}`
        : `entry for ${rcpt.userid} with services "${entry.services}" ${denied ? 'matches' : 'does not match'} service "${o.serviceName}"` +
          (denied ? `: ${JSON.stringify(entry.message || MSG_DENIED_DEFAULT)}` : ''));
    }
    return denied ? deniedReply(entry) : checkMailbox();
  });
}

