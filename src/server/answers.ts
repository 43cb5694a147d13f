// From request key bytes to the reply netstring, through the policy and an answer cache.
// The cache is exact for stores that report changes (SQLite's PRAGMA data_version: any
// commit by smmapctl or sync empties it) and TTL-bounded for stores that cannot (IMAP).
import { encodeNetstring } from '../core/netstring';
import { isPromise, verify, type PolicyOptions } from '../core/policy';
import { decodeKey } from '../core/recipient';
import { replyPayload, storeFailure, type Outcome, type Reply } from '../core/reply';
import type { MailboxStore, Maybe } from '../store/store';
import type { CacheStats } from './metrics';

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

interface Entry {
  readonly answer: Answer;
  readonly expires: number;
}

/**
 * Keys longer than this are answered but not cached: an entry holds its key three times
 * (cache key, audit key, the echo in `OK <key>`), and real addresses are short (Sendmail
 * cuts keys at 256 bytes), so long keys only serve to fill memory.
 */
const MAX_CACHED_KEY = 512;

/** Store failures are never cached: the next request must ask the store again. */
function cacheable(r: Reply): boolean {
  return !(r.status === 'TEMP' && r.outcome === 'failed');
}

/** The answer to a map name that is neither configured nor listed in smmapd_verify_maps. */
const UNCONFIGURED = storeFailure('Map not configured');
const UNCONFIGURED_WIRE = encodeNetstring(replyPayload(UNCONFIGURED));

export class Answerer {
  private readonly cache = new Map<string, Entry>();
  /** Named directory maps (smmapd_map_NAME, src/table/maps.ts); null when none is configured. */
  maps: ReadonlyMap<string, { answer(keyBytes: Buffer): Maybe<Answer> }> | null = null;
  /**
   * smmapd_verify_maps: the map names that get the Cyrus verification; null (unset): every
   * name that is not a configured map. Any other name answers TEMP and is reported.
   */
  verifyMaps: ReadonlySet<string> | null = null;
  /** Told each map name answered TEMP for not being configured (the caller rate-limits the log). */
  onUnconfigured: (name: string) => void = () => undefined;
  private counter = NaN;
  private checkedAt = 0;
  private readonly exact: boolean;

  constructor(
    private readonly store: MailboxStore,
    private readonly policy: PolicyOptions,
    private readonly cacheOpts: CacheOptions,
    /** Hit and miss counts for the metrics; the service passes one object that outlives reloads. */
    private readonly stats: CacheStats = { hits: 0, misses: 0 },
  ) {
    this.exact = typeof store.changeCounter === 'function';
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
  answer(keyBytes: Buffer, frame?: Buffer): Maybe<Answer> {
    if ((this.maps !== null || this.verifyMaps !== null) && frame !== undefined) {
      // A configured map name (the request's first word) selects its table; any other name
      // gets the Cyrus verification, or with smmapd_verify_maps only the names it lists.
      // Without smmapd_map_* and smmapd_verify_maps this is two null checks.
      const name = frame.toString('latin1', 0, frame.length - keyBytes.length - 1).toLowerCase();
      const m = this.maps?.get(name);
      if (m !== undefined) return m.answer(keyBytes);
      if (this.verifyMaps !== null && !this.verifyMaps.has(name)) {
        this.onUnconfigured(name);
        return { wire: UNCONFIGURED_WIRE, outcome: UNCONFIGURED.outcome, status: UNCONFIGURED.status, key: keyBytes.toString('latin1') };
      }
    }
    // latin1 maps bytes 1:1 to a string: an exact cache key that is cheap to make.
    const cacheKey = keyBytes.toString('latin1');
    const hit = this.cache.get(cacheKey);
    if (hit !== undefined) {
      if (hit.expires === 0 || hit.expires > Date.now()) {
        this.stats.hits++;
        return hit.answer;
      }
      this.cache.delete(cacheKey);
    }
    this.stats.misses++;
    const key = decodeKey(keyBytes);
    const r = verify(key, this.store, this.policy);
    const text = key ?? cacheKey;
    return isPromise(r) ? r.then((reply) => this.remember(cacheKey, text, reply)) : this.remember(cacheKey, text, r);
  }

  private remember(cacheKey: string, key: string, r: Reply): Answer {
    const answer: Answer = { wire: encodeNetstring(replyPayload(r)), outcome: r.outcome, status: r.status, key };
    const { size, positiveTtlMs, negativeTtlMs } = this.cacheOpts;
    if (size === 0 || !cacheable(r) || cacheKey.length > MAX_CACHED_KEY) return answer;
    let expires = 0;
    if (!this.exact) {
      const ttl = r.status === 'OK' ? positiveTtlMs : negativeTtlMs;
      if (ttl === 0) return answer;
      expires = Date.now() + ttl;
    }
    if (this.cache.size >= size) {
      // Oldest first: Map keeps insertion order.
      this.cache.delete(this.cache.keys().next().value as string);
    }
    this.cache.set(cacheKey, { answer, expires });
    return answer;
  }
}
