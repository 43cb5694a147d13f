// The Cyrus verification: from request key bytes to the reply netstring, through the checks
// (core/checks.ts verify) and an answer cache. The cache is exact for stores that report
// changes (SQLite's PRAGMA data_version: any commit by smmapctl or sync empties it) and
// TTL-bounded for stores that cannot (IMAP). Which requests come here is the router's
// business (router.ts).
import { encodeNetstring } from '../core/netstring';
import { verify, type CheckOptions } from '../core/checks';
import { isPromise } from '../core/contract';
import { decodeKey } from '../core/recipient';
import { replyPayload, type Outcome, type Reply } from '../core/reply';
import type { MailboxStore, Maybe } from '../store/store';
import { AnswerCache, type CacheStats } from './answer-cache';

export interface Answer {
  /** The whole reply netstring, ready to write. */
  readonly wire: string;
  readonly outcome: Outcome;
  readonly status: Reply['status'];
  /** The key as text, for the audit log. */
  readonly key: string;
}

export interface CacheOptions {
  /** Most entries kept; 0 disables the cache. */
  readonly size: number;
  /** TTLs in ms for stores without a change counter (0 = do not cache that kind). */
  readonly positiveTtlMs: number;
  readonly negativeTtlMs: number;
}

/** Store failures are never cached: the next request must ask the store again. */
function cacheable(r: Reply): boolean {
  return !(r.status === 'TEMP' && r.outcome === 'failed');
}

export class CyrusAnswers {
  private readonly cache: AnswerCache<Answer>;
  private counter = NaN;
  private checkedAt = 0;
  private readonly exact: boolean;

  constructor(
    private readonly store: MailboxStore,
    private readonly checks: CheckOptions,
    private readonly cacheOpts: CacheOptions,
    /** Hit and miss counts for the metrics; the service passes one object that outlives reloads. */
    stats: CacheStats = { hits: 0, misses: 0 },
  ) {
    this.exact = typeof store.changeCounter === 'function';
    this.cache = new AnswerCache(cacheOpts.size, stats);
  }

  /**
   * Call before a batch of requests: empties the cache if the store changed since the last
   * check. Reading SQLite's data_version takes the WAL read lock (~4 µs, more than a cache
   * hit costs), so it is read at most once per millisecond: no client can commit with
   * smmapctl and ask again within that, so answers stay exact in practice.
   */
  refresh(): void {
    if (!this.exact || this.cacheOpts.size === 0) return;
    const now = Date.now();
    if (now === this.checkedAt) return;
    this.checkedAt = now;
    let c: number;
    try {
      c = this.store.changeCounter!();
    } catch {
      c = NaN; // store unavailable: forget everything, lookups will report the failure
    }
    if (c !== this.counter || Number.isNaN(c)) {
      this.cache.clear();
      this.counter = c;
    }
  }

  /** Answer the key bytes of one request (everything after the first space). */
  answer(keyBytes: Buffer): Maybe<Answer> {
    // latin1 maps bytes 1:1 to a string: an exact cache key that is cheap to make.
    const cacheKey = keyBytes.toString('latin1');
    const hit = this.cache.get(cacheKey);
    if (hit !== undefined) return hit;
    const key = decodeKey(keyBytes);
    const r = verify(key, this.store, this.checks);
    const text = key ?? cacheKey;
    return isPromise(r) ? r.then((reply) => this.remember(cacheKey, text, reply)) : this.remember(cacheKey, text, r);
  }

  private remember(cacheKey: string, key: string, r: Reply): Answer {
    const answer: Answer = { wire: encodeNetstring(replyPayload(r)), outcome: r.outcome, status: r.status, key };
    if (!cacheable(r)) return answer;
    if (this.exact) this.cache.set(cacheKey, answer, 0);
    else {
      const ttl = r.status === 'OK' ? this.cacheOpts.positiveTtlMs : this.cacheOpts.negativeTtlMs;
      if (ttl !== 0) this.cache.set(cacheKey, answer, ttl);
    }
    return answer;
  }
}
