// Quota arithmetic (behaviour §3.4), as Cyrus's smmapd check_quotas asks quota_check_useds:
// STORAGE with a delta of 0 bytes, MESSAGE with a delta of 1 (imap/quota_db.c quota_check:
// over when used + delta > limit × unit; a negative limit, for us null, is unlimited).
import type { QuotaState } from './contract';

/** Bytes per STORAGE unit (Cyrus quota_units[QUOTA_STORAGE]). */
export const KIB = 1024;

/** Bytes → whole KiB, rounded down, as Cyrus reports STORAGE usage. */
export function kibOf(bytes: number): number {
  return Math.floor(bytes / KIB);
}

/** KiB → bytes. Stores that only know KiB report usage this way (behaviour §3, last paragraphs). */
export function bytesOfKib(kib: number): number {
  return kib * KIB;
}

/** STORAGE is over when usage in bytes is above the limit; exactly at the limit is fine. */
export function isStorageOver(q: QuotaState): boolean {
  return q.storageLimitKiB !== null && q.storageUsed > q.storageLimitKiB * KIB;
}

/** MESSAGE is over when one more message would exceed the limit. */
export function isMessageOver(q: QuotaState): boolean {
  return q.messageLimit !== null && q.messageUsed + 1 > q.messageLimit;
}

export function isOverQuota(q: QuotaState): boolean {
  return isStorageOver(q) || isMessageOver(q);
}
