// Differential test against the real thing: the same keys asked of Cyrus 3.6's own smmapd and of
// ours, through our daemon process over a socket, with three stores built from the same Cyrus:
//   live    smmapd_backend: imap, asking Cyrus over IMAP at each lookup
//   sync    a SQLite replica written by `smmapctl sync`
//   import  a SQLite store seeded by `smmapctl import-cyrus` from ctl_mboxlist -d, quota, cyr_deny -l
// Our daemon reads Cyrus's own imapd.conf (plus our smmapd_ lines), so both sides run on one
// configuration. Answers must match byte for byte; where we differ on purpose, the difference
// is named below with its doc/behaviour.md section, and the test checks that Cyrus still answers otherwise.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cyrusAvailable, populate, smmapdConf, startCyrus, type AdminOp, type Cyrus, type CyrusOptions } from '../helpers/cyrus';
import { buildOnce, ctlOk } from '../helpers/ctl';
import { startDaemon, type RunningDaemon } from '../helpers/daemon';
import { query } from '../helpers/socketmap';
import { describeWithPeer } from '../helpers/procs';

type StoreKind = 'live' | 'sync' | 'import';
const ALL: readonly StoreKind[] = ['live', 'sync', 'import'];

/** A deliberate difference: for these stores our answer is `ours`, and Cyrus 3.6 answers otherwise. */
interface Difference {
  readonly key: string;
  readonly stores: readonly StoreKind[];
  readonly ours: string;
  readonly why: string;
}

interface Scenario {
  readonly title: string;
  readonly cyrus: CyrusOptions;
  readonly ops: readonly AdminOp[];
  /** cyr_deny invocations: [user, services or '', message or '']. */
  readonly deny?: ReadonlyArray<readonly [string, string, string]>;
  readonly keys: readonly (string | Buffer)[];
  readonly differences: readonly Difference[];
  /** Import the text quota report instead of `quota -J` (then usage is KiB-rounded, like IMAP). */
  readonly textQuotaReport?: boolean;
}

// Message sizes: APPEND of `From: a@b\r\nSubject: x\r\n\r\n` + body + `\r\n` is body + 27 bytes.
const bytes = (n: number): number => n - 27;

const KIB = 'behaviour §3 (last paragraphs): through IMAP, STORAGE usage is KiB rounded down and counts as KiB × 1024';
const MUTF7 = 'behaviour §2.3: a detail already in modified UTF-7 is taken as it is (Cyrus 3.12+); 3.6 re-encodes it';
const CONTROL = 'behaviour §2.9: a key with a control character never names a mailbox; 3.6 cuts the key at NUL';
const DENY = 'behaviour §3.1: the user deny list is consulted (Cyrus 3.12); 3.6 smmapd ignores it';
const DEFAULTDOMAIN = 'behaviour §2.2: defaultdomain is compared case-insensitively; Cyrus 3.6 compares case-sensitively';
const DOMAIN_ROOT = "Cyrus 3.6's quota report cannot name a domain's own root ((null) / left out), so import-cyrus cannot carry it";

const A: Scenario = {
  title: 'unixhierarchysep no, virtdomains off, lmtp_downcase_rcpt yes',
  cyrus: { unixhierarchysep: false, virtdomains: 'off', lmtpDowncaseRcpt: true },
  ops: [
    ...['user.fred', 'user.fred.sub', 'user.fred.Mixed', 'user.fred.open', 'user.fred.caf&AOk-', 'user.fred^smith',
      'user.fred^smith.a^b', 'user.fr&AMk-d', 'user.Upper', 'user.full', 'user.full.deep', 'user.quotamsg',
      'user.nested', 'user.nested.inner', 'user.nested.over', 'user.nested.plain', 'user.exact', 'user.exact1',
      'user.denied', 'user.denied2', 'shared.pub', 'shared.nopost', 'shared.hidden', 'shared.neg', 'shared.anonp',
      'shared.full'].map((create) => ({ create })),
    { setacl: ['shared.pub', 'anyone', 'lrsp'] },
    { setacl: ['shared.nopost', 'anyone', 'lrs'] },
    { deleteacl: ['shared.hidden', 'anyone'] },
    { setacl: ['shared.neg', 'anyone', 'lrsp'] },
    { setacl: ['shared.neg', '-anonymous', 'p'] },
    { deleteacl: ['shared.anonp', 'anyone'] },
    { setacl: ['shared.anonp', 'anonymous', 'p'] },
    { setacl: ['shared.full', 'anyone', 'lrsp'] },
    { setacl: ['user.fred.open', 'anyone', 'p'] },
    // Quotas: set generous limits, append, then tighten (Cyrus refuses an APPEND over quota).
    ...(['user.full', 'user.quotamsg', 'user.nested.inner', 'user.nested.over', 'user.exact', 'user.exact1', 'shared.full']
      .map((m) => ({ setquota: [m, '(STORAGE 100000 MESSAGE 100)'] as const }))),
    { append: ['user.full', 3000] },
    { append: ['user.quotamsg', 10] },
    { append: ['user.nested.inner', 3000] },
    { append: ['user.nested.over', 3000] },
    { append: ['user.exact', bytes(2048)] },
    { append: ['user.exact1', bytes(2049)] },
    { append: ['shared.full', 3000] },
    { setquota: ['user.full', '(STORAGE 1)'] },
    { setquota: ['user.quotamsg', '(MESSAGE 1)'] },
    { setquota: ['user.nested.inner', '(STORAGE 2)'] },
    { setquota: ['user.nested.over', '(STORAGE 1)'] },
    { setquota: ['user.nested', '(STORAGE 100000)'] },
    { setquota: ['user.exact', '(STORAGE 2)'] },
    { setquota: ['user.exact1', '(STORAGE 2)'] },
    { setquota: ['shared.full', '(STORAGE 1)'] },
  ],
  deny: [['denied', '', ''], ['denied2', 'imap,pop3', 'go away']],
  keys: [
    'fred', 'Fred', 'FRED', 'fred+sub', 'fred+Sub', 'fred+Mixed', 'fred+mixed', 'fred+nosuch', 'fred+sub.deeper', 'fred+sub+x',
    'fred+open', 'fred+', 'fred+.sub', 'fred+sub.', 'fred+x..y', 'fred++sub', 'fred.smith', 'fred.smith+a^b', 'fred.smith+a.b',
    'fred+café', 'fred+caf&AOk-', 'FRÉD', 'frÉd', 'Upper', 'upper', 'full', 'full+deep', 'quotamsg', 'nested', 'nested+inner',
    'nested+over', 'nested+plain', 'exact', 'exact1', 'orphan', 'orphan+sub', 'denied', 'denied2', 'nosuch', '', 'fred@',
    'fred@example.com', 'fred@EXAMPLE.COM', 'fred+sub@example.com', '@', '+', '@example.com', 'a b', 'fred@x@y',
    '+shared.pub', '+shared.nopost', '+shared.hidden', '+shared.neg', '+shared.anonp', '+shared.full', '+shared',
    '+shared.none', '+user.fred.open', '+user.fred', '+user.fred.sub', 'x+shared.pub', Buffer.from('fred\x00x'),
    'fre*', 'fre%', 'fred+su*', 'fred"x', 'fred\\x', 'fred{3}', 'x'.repeat(300), `fred+${'y'.repeat(600)}`,
  ],
  differences: [
    { key: 'nested+inner', stores: ['live', 'sync'], ours: 'OK nested+inner', why: `${KIB}: ~3028 bytes under a 2 KiB limit show as (STORAGE 2 2)` },
    { key: 'exact1', stores: ['live', 'sync'], ours: 'OK exact1', why: `${KIB}: 2049 bytes under a 2 KiB limit show as (STORAGE 2 2)` },
    { key: 'fred+caf&AOk-', stores: ALL, ours: 'OK fred+caf&AOk-', why: MUTF7 },
    { key: 'denied', stores: ['import'], ours: 'NOTFOUND Access to this service has been blocked', why: DENY },
    { key: 'fred\x00x', stores: ALL, ours: 'NOTFOUND Mailbox does not exist', why: CONTROL },
  ],
};

const B: Scenario = {
  title: 'unixhierarchysep yes, virtdomains userid + defaultdomain, lmtp_downcase_rcpt no, over quota PERM',
  cyrus: { unixhierarchysep: true, virtdomains: 'userid', defaultdomain: 'example.org', lmtpDowncaseRcpt: false, lmtpOverQuotaPermFailure: true },
  ops: [
    ...['user/fred', 'user/fred/sub', 'user/fred/Sub2', 'user/fred.smith', 'user/fred.smith/a.b', 'user/Mixed', 'user/full',
      'user/full/deep', 'user/bob@example.com', 'user/bob/in.ner@example.com', 'user/dom@example.net', 'user/dom/x@example.net',
      // Cyrus 3.6 refuses a domain's shared folder once the default domain has one: domain first.
      'user/own@example.net', 'user/fine@example.com', 'shared/pub@example.com', 'shared/pub', 'shared/nopost']
      .map((create) => ({ create })),
    { setacl: ['shared/pub', 'anyone', 'lrsp'] },
    { setacl: ['shared/nopost', 'anyone', 'lrs'] },
    { setacl: ['shared/pub@example.com', 'anyone', 'lrsp'] },
    { setquota: ['user/full', '(STORAGE 100000)'] },
    { append: ['user/full', 3000] },
    { setquota: ['user/full', '(STORAGE 1)'] },
    // A domain's own roots: MESSAGE 0 refuses everything it governs; a closer root wins.
    { setquota: ['@example.net', '(MESSAGE 0)'] },
    { setquota: ['user/own@example.net', '(STORAGE 100)'] },
    { setquota: ['@example.com', '(STORAGE 100)'] },
  ],
  keys: [
    'fred', 'Fred', 'fred+sub', 'fred+Sub2', 'fred+sub2', 'fred.smith', 'fred.smith+a.b', 'fred.smith+a^b', 'fred.smith+a/b',
    'Mixed', 'mixed', 'full', 'full+deep', 'full@example.org', 'full@EXAMPLE.ORG', 'fred@example.org', 'fred@',
    'fred@example.com', 'bob@example.com', 'bob+in.ner@example.com', 'bob+in^ner@example.com', 'bob@EXAMPLE.COM',
    'BOB@example.com', 'bob', 'dom@example.net', 'dom+x@example.net', 'own@example.net', 'fine@example.com',
    '+shared/pub', '+shared.pub', '+shared/nopost', '+shared/pub@example.com', 'nosuch@example.net', '',
  ],
  differences: [
    // With lmtp_downcase_rcpt no, Cyrus 3.6 looks for the mailbox in a domain EXAMPLE.ORG.
    { key: 'full@EXAMPLE.ORG', stores: ALL, ours: 'PERM Over quota', why: DEFAULTDOMAIN },
    { key: 'dom@example.net', stores: ['import'], ours: 'OK dom@example.net', why: DOMAIN_ROOT },
    { key: 'dom+x@example.net', stores: ['import'], ours: 'OK dom+x@example.net', why: DOMAIN_ROOT },
  ],
};

const C: Scenario = {
  title: 'postuser bb, unixhierarchysep no, virtdomains off, text quota report',
  cyrus: { unixhierarchysep: false, virtdomains: 'off', postuser: 'bb' },
  ops: [
    ...['user.fred', 'user.fred.sub', 'user.fred.open', 'user.shared', 'user.shared.pub', 'user.bb', 'shared.pub', 'shared.nopost', 'shared.full',
      'user.full'].map((create) => ({ create })),
    { setacl: ['shared.pub', 'anyone', 'lrsp'] },
    { setacl: ['shared.nopost', 'anyone', 'lrs'] },
    { setacl: ['shared.full', 'anyone', 'lrsp'] },
    { setacl: ['user.fred.open', 'anyone', 'p'] },
    { setquota: ['shared.full', '(STORAGE 100000)'] },
    { append: ['shared.full', 3000] },
    { setquota: ['shared.full', '(STORAGE 1)'] },
    { setquota: ['user.full', '(STORAGE 100000)'] },
    { append: ['user.full', bytes(2049)] },
    { setquota: ['user.full', '(STORAGE 2)'] },
  ],
  keys: [
    'bb+shared.pub', 'BB+shared.pub', 'bb+shared.nopost', 'bb+shared.full', 'bb+shared', 'bb', 'bb+', '+shared.pub',
    'bb+user.fred.open', 'bb+user.fred', 'bb+shared.pub@example.com', 'fred', 'fred+sub', 'fred+open', 'full', 'bbb+shared.pub',
  ],
  textQuotaReport: true,
  differences: [
    { key: 'full', stores: ALL, ours: 'OK full', why: `${KIB} (the text quota report is KiB too): 2049 bytes under 2 KiB` },
  ],
};

const D: Scenario = {
  title: 'unixhierarchysep no, virtdomains userid, lmtp_downcase_rcpt yes',
  cyrus: { unixhierarchysep: false, virtdomains: 'userid', lmtpDowncaseRcpt: true },
  ops: [
    ...['user.fred', 'user.fred.sub', 'user.bob@example.com', 'user.bob.sub@example.com', 'user.full@example.com',
      'shared.pub', 'user.x^y@example.com'].map((create) => ({ create })),
    { setacl: ['shared.pub', 'anyone', 'lrsp'] },
    { setquota: ['user.full@example.com', '(STORAGE 100000)'] },
    { append: ['user.full@example.com', 3000] },
    { setquota: ['user.full@example.com', '(STORAGE 1)'] },
  ],
  keys: [
    'fred', 'fred@', 'fred@example.com', 'bob@example.com', 'Bob@EXAMPLE.com', 'bob+sub@example.com', 'bob+Sub@example.com',
    'full@example.com', 'FULL@Example.Com', 'x.y@example.com', 'bob', '+shared.pub', '+shared.pub@example.com', 'a@b@example.com',
  ],
  differences: [],
};

const E: Scenario = {
  title: 'unixhierarchysep yes, virtdomains on + defaultdomain, lmtp_downcase_rcpt yes',
  cyrus: { unixhierarchysep: true, virtdomains: 'on', defaultdomain: 'example.org', lmtpDowncaseRcpt: true },
  ops: [
    ...['user/fred', 'user/fred/sub', 'user/full', 'user/fred@example.com', 'user/full@example.com'].map((create) => ({ create })),
    ...['user/full', 'user/full@example.com'].flatMap((m) => [
      { setquota: [m, '(STORAGE 100000)'] } as const, { append: [m, 3000] } as const, { setquota: [m, '(STORAGE 1)'] } as const]),
  ],
  keys: [
    'fred', 'fred@example.org', 'fred@EXAMPLE.ORG', 'FRED@Example.Org', 'fred+sub@EXAMPLE.ORG', 'full', 'full@example.org',
    'full@EXAMPLE.ORG', 'fred@example.com', 'Fred@EXAMPLE.COM', 'full@example.com', 'full@Example.com', 'fred@',
  ],
  differences: [
    // Cyrus 3.6 takes EXAMPLE.ORG for another domain, then lowercases: example.org!user.full has the
    // mailbox (the same one) but quota_findroot looks under that domain and finds no root.
    { key: 'full@EXAMPLE.ORG', stores: ALL, ours: 'TEMP Over quota', why: `${DEFAULTDOMAIN}: a quota bypass we do not copy` },
  ],
};

async function answers(conf: string, keys: readonly (string | Buffer)[]): Promise<string[]> {
  const d: RunningDaemon = await startDaemon(conf);
  try {
    return await query(d.target, keys);
  } finally {
    await d.stop();
  }
}

function keyText(k: string | Buffer): string {
  return typeof k === 'string' ? k : k.toString('latin1');
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
      for (const [user, services, message] of s.deny ?? []) {
        cy.tool('cyr_deny', [...(services ? ['-s', services] : []), ...(message ? ['-m', message] : []), user]);
      }
      want = await query(`127.0.0.1:${cy.smmapPort}`, s.keys, 'cyrus');

      got.set('live', await answers(smmapdConf(cy, dir, 'live', 'imap', ['smmapd_imap_timeout: 5']), s.keys));

      const replica = smmapdConf(cy, dir, 'replica', 'sqlite', ['smmapd_imap_timeout: 5']);
      expect(ctlOk(replica, ['sync']).join('\n')).toMatch(/^synced \d+ mailboxes, \d+ quota roots, \d+ ACLs in /);
      got.set('sync', await answers(replica, s.keys));

      const imported = smmapdConf(cy, dir, 'import', 'sqlite', ['smmapd_imap_timeout: 5']);
      const dump = (file: string, text: string): string => (writeFileSync(join(dir, file), text), join(dir, file));
      const mboxlist = dump('mboxlist.json', cy.tool('ctl_mboxlist', ['-d']));
      const quota = dump('quota.txt', cy.tool('quota', s.textQuotaReport ? [] : ['-J']));
      const deny = dump('deny.txt', s.deny ? cy.tool('cyr_deny', ['-l']) : '');
      ctlOk(imported, ['import-cyrus', '--mboxlist', mboxlist, '--quota', quota, '--deny', deny]);
      got.set('import', await answers(imported, s.keys));
      if (process.env.SMMAPD_DIFF_VERBOSE) {
        s.keys.forEach((k, i) => console.log(`${JSON.stringify(keyText(k))}\tcyrus=${want[i]}\t${ALL.map((kind) => `${kind}=${got.get(kind)![i]}`).join('\t')}`));
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
          const key = keyText(k);
          const diff = s.differences.find((d) => d.key === key && d.stores.includes(kind));
          const expected = diff ? diff.ours : want[i];
          if (ours[i] !== expected) mismatches.push(`[${key}] cyrus [${want[i]}] ours [${ours[i]}]${diff ? ` (named: ${diff.why})` : ''}`);
        });
        expect(mismatches).toEqual([]);
      });
    }

    if (s.differences.length > 0) {
      it('each named difference still holds: Cyrus 3.6 answers otherwise', () => {
        const stale = s.differences.filter((d) => want[s.keys.findIndex((k) => keyText(k) === d.key)] === d.ours);
        expect(stale.map((d) => `${d.key}: Cyrus now answers [${d.ours}] too (${d.why})`)).toEqual([]);
      });
    }
  });
}

describeWithPeer('differential: Cyrus 3.6 smmapd vs ours (live, sync, import)', cyrusAvailable() ? null : 'Cyrus 3.6 (cyrus-imapd, as root)', () => {
  for (const s of [A, B, C, D, E]) runScenario(s);
});
