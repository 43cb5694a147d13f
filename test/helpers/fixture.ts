// A store with the few mailboxes that show each kind of answer, made with the real smmapctl,
// and the example configuration files of conf/ with their installed paths swapped for the
// test's (each swap must match, so the examples cannot drift from what the tests run).
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runCtl, tempConfig } from './base';

/** Each key and the reply it must get from the fixture store. */
export const ANSWERS: ReadonlyArray<readonly [string, string]> = [
  ['fred', 'OK fred'],
  ['nosuch', 'NOTFOUND Mailbox does not exist'],
  ['full', 'TEMP Over quota'],
  ['+shared.nopost', 'PERM Permission denied'],
];

export interface Fixture {
  readonly dir: string;
  readonly conf: string;
  readonly store: string;
  /** A key file for smload: one key per line. */
  readonly keys: string;
}

export function ctl(conf: string, args: readonly string[], input?: string): string {
  const r = runCtl(conf, args, input);
  if (r.code !== 0) throw new Error(`smmapctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The mailboxes behind ANSWERS, as `smmapctl batch` lines. */
export const FIXTURE_BATCH: readonly string[] = [
  'mailbox create user.fred',
  'mailbox create user.full',
  'mailbox create shared',
  'mailbox create shared.nopost',
  'acl set shared.nopost anyone lrs',
  'quota set user.full --storage 1',
  'quota usage user.full --storage 2048',
];

/**
 * The one store fixture: a temp config (unixhierarchysep: no, then `extra` lines) whose store
 * is provisioned with `batch` (default FIXTURE_BATCH), readable by other users (Cyrus master
 * runs as cyrus), and a key file. tempConfig (base.ts) is the bare config under it.
 */
export function makeFixture(extra = '', batch: readonly string[] = FIXTURE_BATCH): Fixture {
  const env = tempConfig(`unixhierarchysep: no\n${extra}`);
  chmodSync(env.dir, 0o755);
  if (batch.length > 0) ctl(env.conf, ['batch'], batch.join('\n'));
  const keys = join(env.dir, 'keys');
  writeFileSync(keys, 'fred\nnosuch\nfull\n');
  return { ...env, keys };
}

export const EXAMPLE = {
  /** Where the examples say smmapd and its configuration are installed. */
  program: '/usr/local/bin/smmapd',
  config: '/etc/smmapd.conf',
  host: '127.0.0.1',
  port: '12345',
} as const;


export function readExample(rel: string): string {
  return readFileSync(join(ROOT, 'conf', rel), 'utf8');
}

/** Replace each `from` (it must occur, else the example changed and the test must too). */
export function substitute(text: string, swaps: ReadonlyArray<readonly [string | RegExp, string]>): string {
  let out = text;
  for (const [from, to] of swaps) {
    const found = typeof from === 'string' ? out.includes(from) : from.test(out);
    if (!found) throw new Error(`example no longer contains ${String(from)}`);
    out = typeof from === 'string' ? out.split(from).join(to) : out.replace(from, to);
  }
  return out;
}

/** `key=value` lines of a systemd unit (last one wins), comments dropped. */
export function unitValues(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';') || line.startsWith('[')) continue;
    const i = line.indexOf('=');
    if (i < 0) continue;
    const k = line.slice(0, i).trim();
    m.set(k, [...(m.get(k) ?? []), line.slice(i + 1).trim()]);
  }
  return m;
}
