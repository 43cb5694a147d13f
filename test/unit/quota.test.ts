import { describe, it, expect } from 'vitest';
import { bytesOfKib, isMessageOver, isOverQuota, isStorageOver, kibOf } from '../../src/core/quota';
import type { QuotaState } from '../../src/store/store';

function q(o: Partial<QuotaState>): QuotaState {
  return { root: 'user.fred', storageLimitKiB: null, messageLimit: null, storageUsed: 0, messageUsed: 0, ...o };
}

describe('isOverQuota (behaviour §3.4)', () => {
  it('no limits: never over', () => {
    expect(isOverQuota(q({ storageUsed: 1e12, messageUsed: 1e9 }))).toBe(false);
  });

  it('STORAGE: over only above limit × 1024 bytes', () => {
    expect(isOverQuota(q({ storageLimitKiB: 1, storageUsed: 1023 }))).toBe(false);
    expect(isOverQuota(q({ storageLimitKiB: 1, storageUsed: 1024 }))).toBe(false); // exactly at the limit
    expect(isOverQuota(q({ storageLimitKiB: 1, storageUsed: 1025 }))).toBe(true);
    expect(isOverQuota(q({ storageLimitKiB: 1, storageUsed: 2048 }))).toBe(true); // behaviour §4 user.full
    expect(isOverQuota(q({ storageLimitKiB: 0, storageUsed: 0 }))).toBe(false);
    expect(isOverQuota(q({ storageLimitKiB: 0, storageUsed: 1 }))).toBe(true);
    expect(isStorageOver(q({ storageLimitKiB: 1, storageUsed: 1025 }))).toBe(true);
  });

  it('MESSAGE: over when one more message would exceed the limit', () => {
    expect(isOverQuota(q({ messageLimit: 1, messageUsed: 0 }))).toBe(false);
    expect(isOverQuota(q({ messageLimit: 1, messageUsed: 1 }))).toBe(true); // behaviour §4 user.quotamsg
    expect(isOverQuota(q({ messageLimit: 0, messageUsed: 0 }))).toBe(true);
    expect(isOverQuota(q({ messageLimit: 10, messageUsed: 9 }))).toBe(false);
    expect(isMessageOver(q({ messageLimit: 10, messageUsed: 10 }))).toBe(true);
  });

  it('either resource suffices; an unlimited one is ignored', () => {
    expect(isOverQuota(q({ storageLimitKiB: null, storageUsed: 5000, messageLimit: 2, messageUsed: 2 }))).toBe(true);
    expect(isOverQuota(q({ storageLimitKiB: 4, storageUsed: 5000, messageLimit: null, messageUsed: 1e6 }))).toBe(true);
    expect(isOverQuota(q({ storageLimitKiB: 4, storageUsed: 4096, messageLimit: 3, messageUsed: 1 }))).toBe(false);
  });

  it('KiB-only stores report KiB × 1024, which is "at the limit" when equal', () => {
    expect(isOverQuota(q({ storageLimitKiB: 100, storageUsed: bytesOfKib(100) }))).toBe(false);
    expect(isOverQuota(q({ storageLimitKiB: 100, storageUsed: bytesOfKib(101) }))).toBe(true);
  });
});

describe('kibOf', () => {
  it('rounds down', () => {
    expect(kibOf(0)).toBe(0);
    expect(kibOf(1023)).toBe(0);
    expect(kibOf(1024)).toBe(1);
    expect(kibOf(2047)).toBe(1);
  });
});
