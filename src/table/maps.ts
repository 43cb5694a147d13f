// Named maps (`smmapd_map_NAME: TYPE:FILE`): a request whose map name is configured is
// answered from that table, as Postfix's own table would answer it: `OK <value>`,
// `NOTFOUND ` when there is none, `TEMP <reason>` when the directory cannot answer (never
// OK because something failed). The answer path and its cache: server/map-answers.ts.
import { isUtf8 } from 'node:buffer';
import type { Config, MapSpec } from '../config';
import { ConfigError } from '../config-error';
import { MAX_REPLY } from '../core/netstring';
import { isPromise, StoreError, type LookupTable, type Maybe, type StoreLog as Log } from '../core/contract';
import { storeFailure, type Reply } from '../core/reply';
import { openTable } from './registry';
import { CfError } from './cf';
import { within } from '../deadline';

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
export function lookupReply(table: LookupTable, keyBytes: Buffer, timeoutMs: number, what: string): Maybe<Reply> {
  if (keyBytes.includes(0) || !isUtf8(keyBytes)) return NO_VALUE;
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

/** A table's NOTFOUND: an empty text, as Postfix's socketmap server says it. */
const NO_VALUE: Reply = { status: 'NOTFOUND', text: '', outcome: 'nonexistent' };

function found(v: string | null): Reply {
  if (v === null) return NO_VALUE;
  // Postfix refuses replies over 100,000 bytes: a value that long cannot be passed on
  if (Buffer.byteLength(v) > MAX_REPLY - 3) return storeFailure('Result too long');
  return { status: 'OK', text: v, outcome: 'ok' };
}

function failed(e: unknown): Reply {
  // StoreError texts are short by construction; anything else is a bug: say little
  return storeFailure(e instanceof StoreError ? e.message : 'internal error');
}
