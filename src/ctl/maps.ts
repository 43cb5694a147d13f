// smmapctl query --map NAME KEY... and smmapctl check-map NAME: the named directory maps
// (smmapd_map_NAME) asked exactly as the daemon asks them, and a map's file checked by
// parsing it, connecting, and running one probe lookup.
import type { Config, MapSpec } from '../config';
import type { Log } from '../store/registry';
import { lookupReply, openMap } from '../table/maps';
import { UsageError, type CtlContext } from './context';
import type { CommandSpec } from './spec';

export function specOf(cfg: Config, name: string): MapSpec {
  const spec = cfg.maps.find((m) => m.name === name.toLowerCase());
  if (spec === undefined) {
    const known = cfg.maps.map((m) => m.name).join(', ') || 'none';
    throw new UsageError(`no map ${name} in ${cfg.path || 'the configuration'} (smmapd_map_${name.toLowerCase()} is not set; configured: ${known})`);
  }
  return spec;
}

/** Each key's reply payload as the daemon sends it for map NAME. */
export async function queryMap(ctx: CtlContext, name: string, keys: readonly string[]): Promise<void> {
  const spec = specOf(ctx.cfg, name);
  const table = openMap(spec, ctx.cfg, () => undefined);
  try {
    for (const key of keys) {
      const r = await lookupReply(table, Buffer.from(key, 'utf8'), ctx.cfg.mapTimeoutMs, `map ${spec.name}`);
      ctx.out(`${r.status} ${r.text}`);
    }
  } finally {
    await table.close();
  }
}

/**
 * A table's log for smmapctl: an ignored parameter is a warning on stderr at once; what the
 * directory said (a host failed, a query failed: PostgreSQL's `relation "alias" does not
 * exist`) is kept in `said`, without the map prefix, to go with a TEMP reply.
 */
export function directoryLines(said: string[]): Log {
  return (msg, level) => {
    const bare = msg.replace(/^map \S+(?: \([^)]*\))?: /, ''); // smmapctl's command names the map already
    if (level === 'warning') process.stderr.write(`smmapctl: warning: ${bare}\n`);
    else if (level !== 'notice') said.push(bare);
  };
}

/** What the directory said, when the TEMP reply's short reason does not say it all (an errno code does). */
export function directoryReasons(reply: string, said: readonly string[]): string[] {
  return /: E[A-Z]+$/.test(reply) ? [] : [...said];
}

/** The probe key: an address no directory should hold, so any answer but TEMP is healthy. */
export const PROBE_KEY = 'smmapctl-probe@example.invalid';

export const checkMapCommand: CommandSpec = {
  words: ['check-map'],
  args: [{ name: 'NAME' }],
  options: [{ long: 'key', value: 'KEY', description: `the probe key (default ${PROBE_KEY})` }],
  summary: 'check a directory map: parse its file, connect, run a probe lookup; one line says what is wrong',
  details:
    'Exit status 0 when the probe got an answer (OK or NOTFOUND), 1 when the file is bad\n' +
    '(file:line: what) or the directory cannot answer (TEMP and why).',
  batch: false,
  async run(ctx, [name], opts) {
    const spec = specOf(ctx.cfg, name!);
    const key = typeof opts['key'] === 'string' ? opts['key'] : PROBE_KEY;
    // parameters the table ignores are worth a warning (a typo there changes nothing), and so
    // is every deliberate difference from Postfix;
    // what the directory itself said goes with the one line below when it cannot answer
    const said: string[] = [];
    const table = openMap(spec, ctx.cfg, directoryLines(said));
    try {
      const t0 = Date.now();
      const r = await lookupReply(table, Buffer.from(key, 'utf8'), ctx.cfg.mapTimeoutMs, `map ${spec.name}`);
      const why = directoryReasons(r.text, said);
      if (r.status === 'TEMP') throw new Error(`${spec.file}: map ${spec.name} (${spec.type}) cannot answer: ${r.text}${why.length > 0 ? ` (${why.join('; ')})` : ''}`);
      ctx.out(`map ${spec.name}: ${spec.type}:${spec.file} ok; probe ${key}: ${r.status} ${r.text}`.trimEnd() + ` (${Date.now() - t0} ms)`);
    } finally {
      await table.close();
    }
  },
};
