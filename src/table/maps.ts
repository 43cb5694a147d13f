// Named maps (`smmapd_map_NAME: TYPE:FILE`): a request whose map name is configured is
// answered from that table, as Postfix's own table would answer it: `OK <value>`,
// `NOTFOUND ` when there is none, `TEMP <reason>` when the directory cannot answer (never
// OK because something failed). Answers may be cached for smmapd_maps_cache_ttl seconds:
// these stores cannot say when they change.
import { isUtf8 } from 'node:buffer';
import type { Config, MapSpec } from '../config';
import { ConfigError, MAX_REPLY } from '../config';
import { StoreError, type LookupTable, type Maybe, type StoreLog as Log } from '../core/contract';
import { encodeNetstring } from '../core/netstring';
import { isPromise } from '../core/policy';
import type { Outcome, Status } from '../core/reply';
import { openTable } from './registry';
import { CfError } from './cf';
import { within } from '../deadline';

/** What the answer path needs of a reply (the server's Answer has this shape). */
export interface MapAnswer {
  readonly wire: string;
  readonly outcome: Outcome;
  readonly status: Status;
  readonly key: string;
}

export interface MapReply {
  readonly status: 'OK' | 'NOTFOUND' | 'TEMP';
  readonly text: string;
}

/** Open one configured table; a bad file is a configuration error naming the option's line and the file's. */
export function openMap(spec: MapSpec, cfg: Config, log: Log): LookupTable {
  // every line of the table names the map and its file: which of several directories failed
  // (and its rate-limit keys too: bounded per map)
  const named: Log = (msg, level, limit) =>
    log(msg.startsWith(`${spec.file}:`) ? `map ${spec.name}: ${msg}` : `map ${spec.name} (${spec.file}): ${msg}`, level, limit === undefined ? undefined : `map ${spec.name}: ${limit}`);
  try {
    return openTable(spec.type, spec.file, cfg, named);
  } catch (e) {
    const msg = e instanceof CfError ? e.message : `${spec.file}: ${(e as Error).message}`;
    throw new ConfigError(`${spec.where}: smmapd_map_${spec.name}: ${msg}`);
  }
}

/** Past the deadline, how long a table that does not keep it itself gets before the reply is TEMP anyway. */
const BACKSTOP_MS = 100;

/**
 * One lookup to a reply. Keys a C client could not have sent (NUL, invalid UTF-8) are not
 * looked up. The deadline goes to the table, which abandons its query there (src/pool.ts);
 * the race here only backs up a table that does not.
 */
export function lookupReply(table: LookupTable, keyBytes: Buffer, timeoutMs: number, what: string): Maybe<MapReply> {
  if (keyBytes.includes(0) || !isUtf8(keyBytes)) return { status: 'NOTFOUND', text: '' };
  const key = keyBytes.toString('utf8');
  let r: Maybe<string | null>;
  try {
    r = table.lookup(key, Date.now() + timeoutMs);
  } catch (e) {
    return failed(e);
  }
  if (!isPromise(r)) return found(r);
  return within(r, Date.now() + timeoutMs + BACKSTOP_MS, () => new StoreError(`${what} lookup timed out`)).then(found, failed);
}

function found(v: string | null): MapReply {
  if (v === null) return { status: 'NOTFOUND', text: '' };
  // Postfix refuses replies over 100,000 bytes: a value that long cannot be passed on
  if (Buffer.byteLength(v) > MAX_REPLY - 3) return { status: 'TEMP', text: 'Result too long' };
  return { status: 'OK', text: v };
}

function failed(e: unknown): MapReply {
  // StoreError texts are short by construction; anything else is a bug: say little
  return { status: 'TEMP', text: e instanceof StoreError ? e.message : 'internal error' };
}

interface Entry {
  readonly answer: MapAnswer;
  readonly expires: number;
}

const OUTCOME: Record<MapReply['status'], Outcome> = { OK: 'ok', NOTFOUND: 'nonexistent', TEMP: 'failed' };

/** One named map on the answer path, with its TTL cache; lookups of a key under way are shared. */
export class MapAnswerer {
  private readonly cache = new Map<string, Entry>();
  /** Lookups under way by key: a request for the same key waits for the same query (single-flight). */
  private readonly inFlight = new Map<string, Promise<MapAnswer>>();

  constructor(
    readonly name: string,
    readonly table: LookupTable,
    private readonly cfg: Config,
  ) {}

  answer(keyBytes: Buffer): Maybe<MapAnswer> {
    const cacheKey = keyBytes.toString('latin1');
    const hit = this.cache.get(cacheKey);
    if (hit !== undefined) {
      if (hit.expires > Date.now()) return hit.answer;
      this.cache.delete(cacheKey);
    }
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

  private remember(cacheKey: string, r: MapReply): MapAnswer {
    const payload = `${r.status} ${r.text}`;
    const answer: MapAnswer = { wire: encodeNetstring(payload), outcome: OUTCOME[r.status], status: r.status, key: cacheKey };
    const ttl = r.status === 'OK' ? this.cfg.mapCacheTtlMs : r.status === 'NOTFOUND' ? this.cfg.mapNegativeCacheTtlMs : 0;
    if (ttl === 0 || this.cfg.cacheSize === 0 || cacheKey.length > 512) return answer;
    if (this.cache.size >= this.cfg.cacheSize) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(cacheKey, { answer, expires: Date.now() + ttl });
    return answer;
  }
}

/** Every configured map by name; null when none is configured (the Cyrus path then pays nothing). */
export function openMaps(cfg: Config, log: Log): Map<string, MapAnswerer> | null {
  if (cfg.maps.length === 0) return null;
  const out = new Map<string, MapAnswerer>();
  try {
    for (const spec of cfg.maps) out.set(spec.name, new MapAnswerer(spec.name, openMap(spec, cfg, log), cfg));
  } catch (e) {
    closeMaps(out);
    throw e;
  }
  return out;
}

export function closeMaps(maps: Map<string, MapAnswerer> | null): void {
  if (maps === null) return;
  for (const m of maps.values()) void Promise.resolve(m.table.close()).catch(() => undefined);
}
