// The real Sendmail 8 as a socketmap client of our daemon, with the example conf/sendmail.mc:
// `-bt` map lookups (the K line) and SMTP RCPT replies (the rulesets), for OK, NOTFOUND,
// TEMP and PERM answers (the client table in doc/behaviour.md).
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSmmapd, type Smmapd } from '../helpers/daemon';
import { makeFixture, type Fixture } from '../helpers/fixture';
import { describeWithPeer, firstMissing } from '../helpers/suite';
import { haveCommand, isRoot } from '../helpers/base';
import { exampleMapLine, exampleMc, Sendmail, sendmailRoot, unshareWorks } from '../helpers/sendmail';

const missing = firstMissing([
  [isRoot(), 'root (unshare, mount --bind)'],
  [sendmailRoot() !== null, 'Sendmail 8 unpacked (SM_ROOT, /var/cache/smmapd-test/sendmail/root: .ci/install-peers)'],
  [haveCommand('m4'), 'm4'],
  [isRoot() && unshareWorks(), 'unshare --uts --mount'],
]);

describeWithPeer('Sendmail 8 socket map', missing, () => {
  let fx: Fixture;
  let d: Smmapd;
  let sm: Sendmail;

  beforeAll(async () => {
    fx = makeFixture('smmapd_workers: 1');
    d = await startSmmapd({ conf: fx.conf });
    sm = new Sendmail(sendmailRoot()!);
  });
  afterAll(async () => {
    await d?.stop();
    sm?.cleanup();
    if (fx) rmSync(fx.dir, { recursive: true, force: true });
  });

  it('-bt: /map cyrus KEY through the example K line: OK returns the value, NOTFOUND/TEMP/PERM no match (68/75/69)', () => {
    const got = sm.mapLookups(exampleMapLine('127.0.0.1', d.port), ['fred', 'nosuch', 'full', '+shared.nopost', 'FRED']);
    expect(got).toEqual([
      'map_lookup: cyrus (fred) returns fred<OK> (0)',
      'map_lookup: cyrus (nosuch) no match (68)',
      'map_lookup: cyrus (full) no match (75)',
      'map_lookup: cyrus (+shared.nopost) no match (69)',
      // Sendmail lowercases the key (the map has no -f)
      'map_lookup: cyrus (FRED) returns fred<OK> (0)',
    ]);
  }, 90_000);

  it('SMTP with the example rulesets: RCPT TO gets 250 / 550 5.1.1 / 451 4.3.0 / 550 5.1.1', async () => {
    const cf = sm.buildCf(exampleMc('127.0.0.1', d.port));
    const got = await sm.rcpt(cf, ['fred@localhost', 'nosuch@localhost', 'full@localhost', '+shared.nopost@localhost', 'FRED@localhost']);
    expect(got[0]).toMatch(/^250 2\.1\.5 <fred@localhost>\.\.\. Recipient ok$/);
    expect(got[1]).toMatch(/^550 5\.1\.1 <nosuch@localhost>\.\.\. User unknown/);
    expect(got[2]).toBe('451 4.3.0 Temporary system failure. Please try again later.');
    expect(got[3]).toMatch(/^550 5\.1\.1 <\+shared\.nopost@localhost>\.\.\. User unknown/);
    expect(got[4]).toMatch(/^250 2\.1\.5 <fred@localhost>\.\.\. Recipient ok$/);
  }, 90_000);
});
