// Named maps on the answer path (`smmapd_map_NAME: TYPE:FILE`): a request the router sends
// to a configured map is answered from its table (table/maps.ts lookupReply), as Postfix's
// own table would answer it: `OK <value>`, `NOTFOUND `, `TEMP <reason>` when the directory
// cannot answer (never OK because something failed). Answers may be cached for
// smmapd_maps_cache_ttl seconds: these stores cannot say when they change.
import type { Config } from '../config';
import { isPromise, type LookupTable, type Maybe } from '../core/contract';
import { encodeNetstring } from '../core/netstring';
import { replyPayload, type Reply } from '../core/reply';
import type { Log } from '../store/registry';
import { lookupReply, openMap } from '../table/maps';
import { AnswerCache } from './answer-cache';
import type { Answer } from './answers';

/** One named map, with its TTL cache; lookups of a key under way are shared. */
export class MapAnswers {
  private readonly cache: AnswerCache<Answer>;
  /** Lookups under way by key: a request for the same key waits for the same query (single-flight). */
  private readonly inFlight = new Map<string, Promise<Answer>>();

  constructor(
    readonly name: string,
    readonly table: LookupTable,
    private readonly cfg: Config,
  ) {
    this.cache = new AnswerCache(cfg.cacheSize);
  }

  answer(keyBytes: Buffer): Maybe<Answer> {
    const cacheKey = keyBytes.toString('latin1');
    const hit = this.cache.get(cacheKey);
    if (hit !== undefined) return hit;
    const shared = this.inFlight.get(cacheKey);
    if (shared !== undefined) return shared;
    const r = lookupReply(this.table, keyBytes, this.cfg.mapTimeoutMs, `map ${this.name}`);
    if (!isPromise(r)) return this.remember(cacheKey, r);
    const p = r.then((x) => {
      this.inFlight.delete(cacheKey);
      return this.remember(cacheKey, x);
    });
    this.inFlight.set(cacheKey, p);
    return p;
  }

  private remember(cacheKey: string, r: Reply): Answer {
    const answer: Answer = { wire: encodeNetstring(replyPayload(r)), outcome: r.outcome, status: r.status, key: cacheKey };
    const ttl = r.status === 'OK' ? this.cfg.mapCacheTtlMs : r.status === 'NOTFOUND' ? this.cfg.mapNegativeCacheTtlMs : 0;
    if (ttl !== 0) this.cache.set(cacheKey, answer, ttl);
    return answer;
  }
}

/** Every configured map by name; null when none is configured (the Cyrus path then pays nothing). */
export function openMaps(cfg: Config, log: Log): Map<string, MapAnswers> | null {
  if (cfg.maps.length === 0) return null;
  const out = new Map<string, MapAnswers>();
  try {
    for (const spec of cfg.maps) out.set(spec.name, new MapAnswers(spec.name, openMap(spec, cfg, log), cfg));
  } catch (e) {
    closeMaps(out);
    throw e;
  }
  return out;
}

export function closeMaps(maps: Map<string, MapAnswers> | null): void {
  if (maps === null) return;
  for (const m of maps.values()) void Promise.resolve(m.table.close()).catch(() => undefined);
}
