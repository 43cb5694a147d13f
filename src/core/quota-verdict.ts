// Size-aware quota (the policy service): what Cyrus's lmtpd decides with lmtp_strict_quota,
// where the message's size is known: quota_check_useds with a STORAGE delta of the message
// size and a MESSAGE delta of 1 (imap/lmtpd.c verify_user, imap/quota_db.c quota_check:
// over when used + delta > limit × unit). With size 0 this is exactly isOverQuota.
// The grace (Dovecot's quota_grace) lets a mailbox that is still within its limit take one
// last message that brings it over by up to that percentage of the limit.
import type { QuotaState } from './contract';
import { KIB } from './quota';

/** room: deliverable; over: full for now; toolarge: larger than the whole limit, so never. */
export type QuotaVerdict = 'room' | 'over' | 'toolarge';

export interface SizedCheck {
  /** Message size in bytes (SIZE= at RCPT, the real size at END-OF-DATA); 0 when unknown. */
  readonly size: number;
  /** smmapd_policy_grace, percent of the storage limit. */
  readonly gracePercent: number;
}

/** The storage limit with grace, bytes; null when unlimited. */
export function graceLimit(q: QuotaState, gracePercent: number): number | null {
  if (q.storageLimitKiB === null) return null;
  const limit = q.storageLimitKiB * KIB;
  return limit + Math.floor((limit * gracePercent) / 100);
}

/**
 * Postfix's `size=` attribute: a decimal byte count (leading zeros allowed). A count too large
 * for a double to hold exactly is larger than any quota: Infinity, never 0. Anything else
 * (empty, a sign, a fraction, letters) is no size at all: null.
 */
export function parsePolicySize(v: string): number | null {
  if (!/^\d+$/.test(v)) return null;
  const n = Number(v);
  return n > Number.MAX_SAFE_INTEGER ? Infinity : n;
}

export function quotaVerdict(q: QuotaState, c: SizedCheck): QuotaVerdict {
  if (q.messageLimit !== null && q.messageUsed + 1 > q.messageLimit) return 'over';
  if (q.storageLimitKiB === null) return 'room';
  const limit = q.storageLimitKiB * KIB;
  if (q.storageUsed > limit) return 'over'; // already over: no grace
  const withGrace = graceLimit(q, c.gracePercent)!;
  if (c.size > withGrace) return 'toolarge';
  return q.storageUsed + c.size > withGrace ? 'over' : 'room';
}
