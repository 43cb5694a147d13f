// The real Postfix as a socketmap client of our daemon: `postmap -q` against an inet and a
// unix socket, and a private smtpd with the example conf/postfix-main.cf lines, whose RCPT TO
// replies show what Postfix makes of each answer (the client table in doc/behaviour.md).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort, isRoot, killMatching, SMMAPD, waitFor } from '../helpers/base';
import { makeFixture, type Fixture } from '../helpers/fixture';
import { postfixAvailable, postmapBatch, postmapQuery, startSmtpd, type Smtpd } from '../helpers/postfix';
import { describeWithPeer, firstMissing } from '../helpers/suite';
import { startSmmapd, type Smmapd } from '../helpers/daemon';

const missing = firstMissing([
  [postfixAvailable(), 'Postfix (postmap, postconf)'],
  [isRoot(), 'root (a private Postfix master)'],
]);

describeWithPeer('Postfix', missing, () => {
  let fx: Fixture;
  let d: Smmapd;
  let port: number;
  let sock: string;

  beforeAll(async () => {
    fx = makeFixture();
    port = await freePort();
    sock = join(fx.dir, 'smmapd.sock');
    d = await startSmmapd({ conf: fx.conf, listen: [`inet:127.0.0.1:${port}`, `unix:${sock}`], stdio: 'ignore', ready: 'none' });
    // not probed by connecting: wait for the files the listener makes
    await waitFor(() => postmapQuery(`socketmap:unix:${sock}:smmapd`, 'fred').status === 0, 10_000);
  });
  afterAll(() => {
    d?.signal('SIGTERM');
    killMatching(`${SMMAPD} -C ${fx.conf}`);
    rmSync(fx.dir, { recursive: true, force: true });
  });

  for (const kind of ['inet', 'unix'] as const) {
    it(`postmap -q over ${kind}: found, not found, temporary and permanent errors`, () => {
      const map = kind === 'inet' ? `socketmap:inet:127.0.0.1:${port}:smmapd` : `socketmap:unix:${sock}:smmapd`;
      expect(postmapQuery(map, 'fred')).toEqual({ status: 0, out: 'fred' });
      expect(postmapQuery(map, 'nosuch')).toEqual({ status: 1, out: '' });
      const full = postmapQuery(map, 'full');
      expect(full.status).not.toBe(0);
      expect(full.out).toContain('temporary error: Over quota');
      const nopost = postmapQuery(map, '+shared.nopost');
      expect(nopost.status).not.toBe(0);
      expect(nopost.out).toContain('permanent error: Permission denied');
      // postmap sends the key as given (smtpd lowercases first)
      expect(postmapQuery(map, 'Fred@Example.COM')).toEqual({ status: 0, out: 'Fred@Example.COM' });
      expect(postmapBatch(map, ['fred', 'nosuch', 'fred@example.com'])).toEqual({ status: 0, out: 'fred\tfred\nfred@example.com\tfred@example.com' });
    });
  }

  it('smtpd with virtual_mailbox_maps = socketmap (conf/postfix-main.cf): RCPT TO 250 / 550 5.1.1 / 451 4.3.0 / 451 4.3.5', async () => {
    let smtpd: Smtpd | null = null;
    try {
      smtpd = await startSmtpd(`socketmap:inet:127.0.0.1:${port}:smmapd`, 'example.test');
      const got = await smtpd.rcpt(['fred@example.test', 'nosuch@example.test', 'full@example.test', '+shared.nopost@example.test', 'FRED@Example.Test']);
      expect(got[0]).toMatch(/^250 2\.1\.5 Ok$/);
      expect(got[1]).toMatch(/^550 5\.1\.1 <nosuch@example\.test>: Recipient address rejected: User unknown in virtual mailbox table$/);
      expect(got[2]).toMatch(/^451 4\.3\.0 <full@example\.test>: Temporary lookup failure$/);
      expect(got[3]).toBe('451 4.3.5 Server configuration error');
      expect(got[4]).toMatch(/^250 2\.1\.5 Ok$/); // smtpd lowercases before asking
      // what the postmaster sees: our reply text in Postfix's warnings
      expect(smtpd.maillog()).toMatch(/warning: socketmap:inet:127\.0\.0\.1:\d+:smmapd socketmap server temporary error: Over quota/);
      expect(smtpd.maillog()).toMatch(/warning: socketmap:inet:127\.0\.0\.1:\d+:smmapd socketmap server permanent error: Permission denied/);
    } finally {
      const left = await smtpd?.stop();
      expect(left ?? [], 'Postfix processes left behind').toEqual([]);
    }
  }, 60_000);
});
