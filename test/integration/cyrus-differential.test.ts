// Differential test against the real thing: the same keys asked of Cyrus 3.6's own smmapd and of
// ours, through our daemon process over a socket, with three stores built from the same Cyrus:
//   live    smmapd_backend: imap, asking Cyrus over IMAP at each lookup
//   sync    a SQLite replica written by `smmapctl sync`
//   import  a SQLite store seeded by `smmapctl import-cyrus` from ctl_mboxlist -d, quota, cyr_deny -l
// Our daemon reads Cyrus's own imapd.conf (plus our smmapd_ lines), so both sides run on one
// configuration. Answers must match byte for byte; where we differ on purpose, the difference
// is named in the scenario with its doc/behaviour.md section, and the test checks that Cyrus still
// answers otherwise. The scenarios are data: test/fixtures/differential/*.json.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, ctlOk } from '../helpers/base';
import { startSmmapd, type Smmapd } from '../helpers/daemon';
import { cyrusAvailable, populate, smmapdConf, startCyrus, type AdminOp, type Cyrus, type CyrusOptions } from '../helpers/cyrus';
import { query } from '../helpers/socketmap';
import { describeWithPeer } from '../helpers/suite';

type StoreKind = 'live' | 'sync' | 'import';
const ALL: readonly StoreKind[] = ['live', 'sync', 'import'];

/** A deliberate difference: for these stores our answer is `ours`, and Cyrus 3.6 answers otherwise. */
interface Difference {
  readonly key: string;
  readonly stores: readonly StoreKind[];
  readonly ours: string;
  readonly why: string;
}

/** Damage done to Cyrus's own files after populating: a quota root's record removed or garbled. */
interface Fault {
  readonly quotaRecord: string;
  readonly make: 'missing' | 'garbage';
}

/** One scenario, from test/fixtures/differential/*.json (a key is sent as its UTF-8 bytes). */
interface Scenario {
  readonly title: string;
  readonly notes?: readonly string[];
  readonly cyrus: CyrusOptions;
  readonly ops: readonly AdminOp[];
  /** cyr_deny invocations: [user, services or '', message or '']. */
  readonly deny?: ReadonlyArray<readonly [string, string, string]>;
  readonly faults?: readonly Fault[];
  readonly keys: readonly string[];
  readonly differences: readonly Difference[];
  /** Import the text quota report instead of `quota -J` (then usage is KiB-rounded, like IMAP). */
  readonly textQuotaReport?: boolean;
}

const FIXTURES = join(__dirname, '../fixtures/differential');
const SCENARIOS: readonly Scenario[] = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort()
  .map((f) => JSON.parse(readFileSync(join(FIXTURES, f), 'utf8')) as Scenario);

/** Cyrus's quotalegacy files: conf/quota/<letter>/<root>. */
function damageQuota(cy: Cyrus, f: Fault): void {
  const found = execFileSync('find', [join(cy.dir, 'conf', 'quota'), '-type', 'f', '-name', f.quotaRecord], { encoding: 'utf8' }).trim();
  if (found === '' || found.includes('\n')) throw new Error(`quota record of ${f.quotaRecord}: found [${found}]`);
  if (f.make === 'missing') rmSync(found);
  else writeFileSync(found, 'garbage\n');
}

async function answers(conf: string, keys: readonly string[]): Promise<string[]> {
  const d: Smmapd = await startSmmapd({ conf });
  try {
    return await query(d.target, keys);
  } finally {
    await d.stop();
  }
}

function runScenario(s: Scenario): void {
  describe(s.title, () => {
    let cy: Cyrus;
    let dir: string;
    let want: string[];
    const got = new Map<StoreKind, string[]>();

    beforeAll(async () => {
      buildOnce();
      dir = mkdtempSync(join(tmpdir(), 'smmapd-diff-'));
      cy = await startCyrus({ ...s.cyrus });
      populate(cy, s.ops);
      for (const f of s.faults ?? []) damageQuota(cy, f);
      for (const [user, services, message] of s.deny ?? []) {
        cy.tool('cyr_deny', [...(services ? ['-s', services] : []), ...(message ? ['-m', message] : []), user]);
      }
      want = await query(`127.0.0.1:${cy.smmapPort}`, s.keys, 'cyrus');

      got.set('live', await answers(smmapdConf(cy, dir, 'live', 'imap', ['smmapd_imap_timeout: 5']), s.keys));

      const replica = smmapdConf(cy, dir, 'replica', 'sqlite', ['smmapd_imap_timeout: 5']);
      expect(ctlOk(replica, ['sync']).join('\n')).toMatch(/^synced \d+ mailboxes( \(\d+ failing: their lookups answer TEMP\))?, \d+ quota roots, \d+ ACLs in /);
      got.set('sync', await answers(replica, s.keys));

      const imported = smmapdConf(cy, dir, 'import', 'sqlite', ['smmapd_imap_timeout: 5']);
      const dump = (file: string, text: string): string => (writeFileSync(join(dir, file), text), join(dir, file));
      const mboxlist = dump('mboxlist.json', cy.tool('ctl_mboxlist', ['-d']));
      const quota = dump('quota.txt', cy.tool('quota', s.textQuotaReport ? [] : ['-J']));
      const deny = dump('deny.txt', s.deny ? cy.tool('cyr_deny', ['-l']) : '');
      ctlOk(imported, ['import-cyrus', '--mboxlist', mboxlist, '--quota', quota, '--deny', deny]);
      got.set('import', await answers(imported, s.keys));
      if (process.env.SMMAPD_DIFF_VERBOSE) {
        s.keys.forEach((k, i) => console.log(`${JSON.stringify(k)}\tcyrus=${want[i]}\t${ALL.map((kind) => `${kind}=${got.get(kind)![i]}`).join('\t')}`));
      }
    });

    afterAll(async () => {
      await cy?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    for (const kind of ALL) {
      it(`${kind}: every key answers as Cyrus does, but for the named differences`, () => {
        const ours = got.get(kind)!;
        const mismatches: string[] = [];
        s.keys.forEach((k, i) => {
          const key = k;
          const diff = s.differences.find((d) => d.key === key && d.stores.includes(kind));
          const expected = diff ? diff.ours : want[i];
          if (ours[i] !== expected) mismatches.push(`[${key}] cyrus [${want[i]}] ours [${ours[i]}]${diff ? ` (named: ${diff.why})` : ''}`);
        });
        expect(mismatches).toEqual([]);
      });
    }

    if (s.differences.length > 0) {
      it('each named difference still holds: Cyrus 3.6 answers otherwise', () => {
        const stale = s.differences.filter((d) => want[s.keys.findIndex((k) => k === d.key)] === d.ours);
        expect(stale.map((d) => `${d.key}: Cyrus now answers [${d.ours}] too (${d.why})`)).toEqual([]);
      });
    }
  });
}

describeWithPeer('differential: Cyrus 3.6 smmapd vs ours (live, sync, import)', cyrusAvailable() ? null : 'Cyrus 3.6 (cyrus-imapd, as root)', () => {
  for (const s of SCENARIOS) runScenario(s);
});
