// The one cache of finished answers, for both answer paths: the Cyrus checks (answers.ts:
// exact entries emptied on a store change, or a TTL) and the named maps (map-answers.ts: TTL).
// Bounded: past `size` entries the oldest goes first (a Map keeps insertion order).

/** Hits and misses; the Cyrus path passes the metrics' object, which outlives reloads. */
export interface CacheStats {
  hits: number;
  misses: number;
}

/**
 * Keys longer than this are answered but not cached: an entry holds its key three times
 * (cache key, audit key, the echo in `OK <key>`), and real addresses are short (Sendmail
 * cuts keys at 256 bytes), so long keys only serve to fill memory.
 */
export const MAX_CACHED_KEY = 512;

interface Entry<V> {
  readonly value: V;
  /** Date.now() past which the entry is stale; 0: never (until clear()). */
  readonly expires: number;
}

export class AnswerCache<V> {
  private readonly entries = new Map<string, Entry<V>>();

  constructor(
    /** Most entries kept; 0 keeps none. */
    private readonly size: number,
    readonly stats: CacheStats = { hits: 0, misses: 0 },
  ) {}

  /** The live entry for `key`, counted as a hit, or undefined, counted as a miss. */
  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (e !== undefined) {
      if (e.expires === 0 || e.expires > Date.now()) {
        this.stats.hits++;
        return e.value;
      }
      this.entries.delete(key);
    }
    this.stats.misses++;
    return undefined;
  }

  /** Keep `value` for `ttlMs` (0: until clear()); a disabled cache or an over-long key keeps nothing. */
  set(key: string, value: V, ttlMs: number): void {
    if (this.size === 0 || key.length > MAX_CACHED_KEY) return;
    if (this.entries.size >= this.size) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, { value, expires: ttlMs === 0 ? 0 : Date.now() + ttlMs });
  }

  clear(): void {
    this.entries.clear();
  }
}
