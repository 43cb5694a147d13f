// Quota arithmetic (SPEC §3.4). STUB: signatures only.
import type { QuotaState } from '../store/store';
export function isOverQuota(q: QuotaState): boolean { throw new Error(`unimplemented ${q.root}`); }
