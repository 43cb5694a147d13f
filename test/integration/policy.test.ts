// smmapd --policy: Postfix's policy delegation protocol on the same checks, size-aware. The
// real Postfix smtpd asks it from smtpd_recipient_restrictions and
// smtpd_end_of_data_restrictions (the example conf/postfix-main.cf lines) next to the
// socketmap; the other process models (inetd/stdio, Cyrus master) and the configurable
// actions are shown with a policy client that writes what smtpd writes.
import { rmSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, haveCommand, isRoot, waitFor } from '../helpers/base';
import { ctl, makeFixture, type Fixture } from '../helpers/fixture';
import { masterAvailable, startMaster } from '../helpers/master';
import { policyQuery, policyRequest } from '../helpers/policy';
import { postfixAvailable, startSmtpd, type Smtpd } from '../helpers/postfix';
import { runSmmapd, startSmmapd, type Smmapd } from '../helpers/daemon';
import { describeWithPeer, firstMissing } from '../helpers/suite';

/** 4,380 bytes of message: over the 2,048 bytes user.small has left. */
const BODY = `Subject: policy test\r\n\r\n${`${'x'.repeat(70)}\r\n`.repeat(60)}`;

function policyFixture(extra = ''): Fixture {
  const fx = makeFixture(extra);
  ctl(fx.conf, ['batch'], [
    'mailbox create user.small',
    'quota set user.small --storage 10',
    'quota usage user.small --storage 8192',
    'mailbox create user.mallory',
    'deny add mallory --services smmapd --message "Account suspended"',
    'mailbox create shared.open',
    'acl set shared.open anyone lrsp',
  ].join('\n'));
  return fx;
}

describe('smmapd --policy, own listener', () => {
  let fx: Fixture;
  let d: Smmapd;
  beforeAll(async () => {
    fx = policyFixture('smmapd_workers: 2\nsmmapd_audit: yes');
    d = await startSmmapd({ conf: fx.conf, args: ['--policy'] });
  });
  afterAll(async () => {
    await d?.stop();
    rmSync(fx.dir, { recursive: true, force: true });
  });

  it('answers each kind of recipient, size-aware, many requests on one connection', async () => {
    const r = await policyQuery(d.port, [
      { recipient: 'fred@example.test', size: 1000 },
      { recipient: 'nosuch@example.test', size: 1000 },
      { recipient: 'small@example.test', size: 0 },
      { recipient: 'small@example.test', size: 2048 },
      { recipient: 'small@example.test', size: 2049 },
      { recipient: 'small@example.test', size: 20000 },
      { recipient: 'full@example.test', size: 0 },
      { recipient: 'mallory@example.test', size: 10 },
      { recipient: '+shared.nopost@example.test', size: 10 },
      { recipient: '+shared.open@example.test', size: 10 },
      { recipient: 'Fred@Example.Test', size: 10 },
      { recipient: '', protocol_state: 'END-OF-DATA', size: 99999999 },
      { recipient: 'small@example.test', protocol_state: 'END-OF-DATA', size: 4380 },
    ]);
    expect(r.replies).toEqual([
      'action=DUNNO',
      'action=550 5.1.1 Mailbox does not exist',
      'action=DUNNO',
      'action=DUNNO', // exactly at the limit: room (over means above it)
      'action=452 4.2.2 Over quota',
      'action=452 4.2.2 Over quota', // larger than the whole limit: _toolarge, by default as _overquota
      'action=452 4.2.2 Over quota',
      'action=550 5.1.1 Account suspended',
      'action=550 5.1.1 Permission denied',
      'action=DUNNO',
      'action=DUNNO',
      'action=DUNNO', // several recipients at END-OF-DATA: none to check
      'action=452 4.2.2 Over quota',
    ]);
    expect(r.closed).toBe(false);
    // the worker writes its audit line after the reply: it may reach us a moment later
    const line = /auditlog: overquota userid=<small@example\.test> client=<127\.0\.0\.1:\d+> state=<END-OF-DATA> size=<4380> action=<overquota>/;
    await waitFor(() => line.test(d.output()), 5000);
    expect(d.output()).toMatch(line);
  });

  it('size=: too large to hold is over any quota, never 0; not a byte count is DUNNO with a log line (issue 13)', async () => {
    const r = await policyQuery(d.port, [
      { recipient: 'small@example.test', size: '100000000000000' }, // 15 digits
      { recipient: 'small@example.test', size: '1000000000000000' }, // 16 digits: was read as 0
      { recipient: 'small@example.test', size: '9'.repeat(400) },
      { recipient: 'small@example.test', size: '000000000000000000002048' }, // leading zeros: 2048, room
      { recipient: 'fred@example.test', size: '9'.repeat(30) }, // no quota: room whatever the size
      { recipient: 'small@example.test', size: 'abc' },
      { recipient: 'nosuch@example.test', size: '-1' },
      { recipient: 'small@example.test', size: '' },
      { recipient: 'small@example.test', size: 10 },
    ]);
    expect(r.replies).toEqual([
      'action=452 4.2.2 Over quota',
      'action=452 4.2.2 Over quota',
      'action=452 4.2.2 Over quota',
      'action=DUNNO',
      'action=DUNNO',
      'action=DUNNO',
      'action=DUNNO',
      'action=DUNNO',
      'action=DUNNO',
    ]);
    expect(r.closed).toBe(false);
    await waitFor(() => d.output().includes('size=-1 is not a byte count'), 5000);
    expect(d.output()).toMatch(/policy request from 127\.0\.0\.1:\d+: size=abc is not a byte count; answered DUNNO/);
    expect(d.output()).toMatch(/auditlog: badsize userid=<small@example\.test> client=<127\.0\.0\.1:\d+> state=<RCPT> size=<abc> action=<badsize>/);
    expect(d.output()).toMatch(/auditlog: overquota userid=<small@example\.test> client=<127\.0\.0\.1:\d+> state=<RCPT> size=<1000000000000000> action=<toolarge>/);
  });

  it('pipelined requests in one write, and a request cut into single bytes, are each answered in order', async () => {
    const three = [{ recipient: 'fred', size: 1 }, { recipient: 'nosuch', size: 1 }, { recipient: 'full', size: 1 }].map(policyRequest).join('');
    const want = 'action=DUNNO\n\naction=550 5.1.1 Mailbox does not exist\n\naction=452 4.2.2 Over quota\n\n';
    for (const chunk of [three.length, 1]) {
      const sock = net.connect({ host: '127.0.0.1', port: d.port });
      let got = '';
      sock.on('data', (b: Buffer) => (got += b.toString()));
      await new Promise((r) => sock.once('connect', r));
      for (let i = 0; i < three.length; i += chunk) sock.write(three.slice(i, i + chunk));
      await waitFor(() => got.length >= want.length, 10_000);
      sock.destroy();
      expect(got).toBe(want);
    }
  });

  it('past smmapd_max_connections a client is deferred in the policy protocol', async () => {
    const fx2 = policyFixture('smmapd_workers: 1\nsmmapd_max_connections: 1');
    const d2 = await startSmmapd({ conf: fx2.conf, args: ['--policy'] });
    await waitFor(() => false, 300); // startSmmapd's probe connection is closed and counted out
    const first = net.connect({ host: '127.0.0.1', port: d2.port });
    try {
      await new Promise((r) => first.once('connect', r));
      await waitFor(() => false, 200); // the first connection is being served
      const r = await policyQuery(d2.port, [{ recipient: 'fred', size: 1 }]);
      expect(r.replies).toEqual(['action=DEFER_IF_PERMIT Too many connections, try again later']);
    } finally {
      first.destroy();
      await d2.stop();
      rmSync(fx2.dir, { recursive: true, force: true });
    }
  });

  it('a malformed request closes the connection without a reply, with a log line', async () => {
    // a daemon of its own: protocol-error lines are limited per peer (5 a minute per worker),
    // and the tests above already spent some of 127.0.0.1's on `size=` notices
    const fx2 = policyFixture('smmapd_workers: 1');
    const d2 = await startSmmapd({ conf: fx2.conf, args: ['--policy'] });
    try {
      for (const [bad, why] of [
        ['request=smtpd_access_policy\nno equals sign\n\n', 'a line that is not name=value'],
        ['recipient=fred\n\n', 'request=(missing), not smtpd_access_policy'],
        [`request=smtpd_access_policy\nrecipient=${'a'.repeat(20000)}\n\n`, 'line longer than 10000 bytes'],
        [`request=smtpd_access_policy\n${Array.from({ length: 300 }, (_, i) => `x${i}=1`).join('\n')}\n\n`, 'more than 256 attributes'],
      ] as const) {
        const r = await policyQuery(d2.port, [{ recipient: 'fred' }, bad, { recipient: 'fred' }]);
        expect(r).toEqual({ replies: ['action=DUNNO'], closed: true });
        // the close can reach us before the log line reaches the daemon's stderr pipe
        await waitFor(() => d2.output().includes(`: ${why}; closing`), 5000);
        expect(d2.output()).toContain(`policy protocol error from 127.0.0.1:`);
        expect(d2.output()).toContain(`: ${why}; closing`);
      }
    } finally {
      await d2.stop();
      rmSync(fx2.dir, { recursive: true, force: true });
    }
  });
});

describe('smmapd --policy: configured actions', () => {
  it('smmapd_policy_* replace each action (%s is the reason); lmtp_over_quota_perm_failure gives 552 5.2.2; grace', async () => {
    const fx = policyFixture([
      'lmtp_over_quota_perm_failure: yes',
      'smmapd_policy_success: PREPEND X-Checked: %s',
      'smmapd_policy_nouser: REJECT no such mailbox (%s)',
      'smmapd_policy_toolarge: 552 5.3.4 Message too big for this mailbox',
      'smmapd_policy_grace: 10',
    ].join('\n'));
    const d = await startSmmapd({ conf: fx.conf, args: ['--policy'] });
    try {
      const r = await policyQuery(d.port, [
        { recipient: 'fred', size: 10 },
        { recipient: 'nosuch', size: 10 },
        { recipient: 'small', size: 3072 }, // 8192 + 3072 = 11264 = limit + 10 %: room with grace
        { recipient: 'small', size: 3073 },
        { recipient: 'small', size: 11265 },
        { recipient: 'full', size: 0 },
      ]);
      expect(r.replies).toEqual([
        'action=PREPEND X-Checked: fred',
        'action=REJECT no such mailbox (Mailbox does not exist)',
        'action=PREPEND X-Checked: small',
        'action=552 5.2.2 Over quota',
        'action=552 5.3.4 Message too big for this mailbox',
        'action=552 5.2.2 Over quota', // already over: no grace
      ]);
    } finally {
      await d.stop();
      rmSync(fx.dir, { recursive: true, force: true });
    }
  });

  it('a store that cannot answer: DEFER_IF_PERMIT with what failed, never DUNNO', async () => {
    const fx = policyFixture();
    const d = await startSmmapd({ conf: fx.conf, args: ['--policy'] });
    try {
      rmSync(fx.store, { force: true });
      rmSync(`${fx.store}-wal`, { force: true });
      rmSync(`${fx.store}-shm`, { force: true });
      const r = await policyQuery(d.port, [{ recipient: 'fred', size: 10 }]);
      expect(r.replies[0]).toMatch(/^action=DEFER_IF_PERMIT \S/);
    } finally {
      await d.stop();
      rmSync(fx.dir, { recursive: true, force: true });
    }
  });
});

describe('smmapd --policy under inetd (stdin/stdout)', () => {
  it('answers every request of the one connection, then exits', () => {
    const fx = policyFixture();
    try {
      const input = [{ recipient: 'fred', size: 1 }, { recipient: 'nosuch', size: 1 }, { recipient: 'small', size: 5000 }].map(policyRequest).join('');
      const r = runSmmapd(['-C', fx.conf, '--policy'], input);
      expect(r.status).toBe(0);
      expect(r.stdout.toString()).toBe('action=DUNNO\n\naction=550 5.1.1 Mailbox does not exist\n\naction=452 4.2.2 Over quota\n\n');
    } finally {
      rmSync(fx.dir, { recursive: true, force: true });
    }
  });
});

const activateMissing = haveCommand('systemd-socket-activate') ? null : 'systemd-socket-activate';
describeWithPeer('smmapd --policy under systemd socket activation', activateMissing, () => {
  for (const accept of [false, true]) {
    it(`Accept=${accept ? 'yes' : 'no'}: answers policy requests`, async () => {
      const fx = policyFixture();
      const port = await freePort();
      const sa = await startSmmapd({ model: 'socket-activate', activate: accept ? ['--accept'] : [], port, conf: fx.conf, args: ['--policy'], stdio: 'ignore' });
      try {
        const r = await policyQuery(port, [{ recipient: 'fred', size: 1 }, { recipient: 'small', size: 3000 }]);
        expect(r.replies).toEqual(['action=DUNNO', 'action=452 4.2.2 Over quota']);
      } finally {
        await sa.stop();
        rmSync(fx.dir, { recursive: true, force: true });
      }
    }, 30_000);
  }
});

const masterMissing = masterAvailable() ? null : 'Cyrus master(8) and root';
describeWithPeer('smmapd --policy as a Cyrus master(8) SERVICE', masterMissing, () => {
  it('the conf/cyrus.conf line with --policy answers policy requests', async () => {
    const fx = policyFixture();
    const port = await freePort();
    const m = await startMaster({ conf: fx.conf, dir: fx.dir, listen: `127.0.0.1:${port}`, limits: '-U 250 -T 60 --policy', prefork: 1, maxchild: 4 });
    try {
      const r = await policyQuery(port, [{ recipient: 'fred', size: 1 }, { recipient: 'full', size: 1 }, { recipient: 'nosuch', size: 1 }], 30_000);
      expect(r.replies).toEqual(['action=DUNNO', 'action=452 4.2.2 Over quota', 'action=550 5.1.1 Mailbox does not exist']);
    } finally {
      expect(await m.stop(), 'workers left after the master exited').toEqual([]);
      rmSync(fx.dir, { recursive: true, force: true });
    }
  }, 60_000);
});

const postfixMissing = firstMissing([
  [postfixAvailable(), 'Postfix (postconf, master)'],
  [isRoot(), 'root (a private Postfix master)'],
]);

describeWithPeer('smmapd --policy with the real Postfix smtpd', postfixMissing, () => {
  let fx: Fixture;
  let sm: Smmapd;
  let pol: Smmapd;
  let smtpd: Smtpd;
  beforeAll(async () => {
    fx = policyFixture();
    sm = await startSmmapd({ conf: fx.conf });
    pol = await startSmmapd({ conf: fx.conf, args: ['--policy'] });
    // the example's lines: socketmap for existence, the policy service at RCPT and END-OF-DATA
    smtpd = await startSmtpd(`socketmap:inet:127.0.0.1:${sm.port}:smmapd`, 'example.test', { policy: `inet:127.0.0.1:${pol.port}` });
  }, 60_000);
  afterAll(async () => {
    const left = await smtpd?.stop();
    await pol?.stop();
    await sm?.stop();
    rmSync(fx.dir, { recursive: true, force: true });
    expect(left ?? [], 'Postfix processes left behind').toEqual([]);
  });

  it('RCPT with SIZE=: 250 with room, 550 5.1.1 unknown or blocked, 452 4.2.2 over quota', async () => {
    const r = await smtpd.session({ sender: 'tester@client.test', size: 1000, recipients: ['fred@example.test', 'nosuch@example.test', 'small@example.test', 'full@example.test', 'mallory@example.test', '+shared.nopost@example.test'] });
    expect(r.mail).toMatch(/^250 /);
    expect(r.rcpt).toEqual([
      '250 2.1.5 Ok',
      '550 5.1.1 <nosuch@example.test>: Recipient address rejected: Mailbox does not exist',
      '250 2.1.5 Ok',
      '452 4.2.2 <full@example.test>: Recipient address rejected: Over quota',
      '550 5.1.1 <mallory@example.test>: Recipient address rejected: Account suspended',
      '550 5.1.1 <+shared.nopost@example.test>: Recipient address rejected: Permission denied',
    ]);
    const big = await smtpd.session({ sender: 'tester@client.test', size: 4000, recipients: ['small@example.test', 'fred@example.test'] });
    expect(big.rcpt).toEqual(['452 4.2.2 <small@example.test>: Recipient address rejected: Over quota', '250 2.1.5 Ok']);
  }, 60_000);

  it('without SIZE= RCPT passes; END-OF-DATA with the real size refuses what does not fit', async () => {
    const r = await smtpd.session({ sender: 'tester@client.test', recipients: ['small@example.test'], body: BODY });
    expect(r.rcpt).toEqual(['250 2.1.5 Ok']);
    expect(r.data).toMatch(/^354 /);
    // Postfix names no recipient at END-OF-DATA, even with one
    expect(r.endOfData).toBe('452 4.2.2 <END-OF-MESSAGE>: End-of-data rejected: Over quota');
    const ok = await smtpd.session({ sender: 'tester@client.test', recipients: ['fred@example.test'], body: BODY });
    expect(ok.endOfData).toMatch(/^250 2\.0\.0 Ok: queued as \w+$/);
  }, 60_000);

  it('END-OF-DATA with several recipients: Postfix names none, so the policy says DUNNO (RCPT time decided)', async () => {
    const r = await smtpd.session({ sender: 'tester@client.test', recipients: ['fred@example.test', 'small@example.test'], body: BODY });
    expect(r.rcpt).toEqual(['250 2.1.5 Ok', '250 2.1.5 Ok']);
    expect(r.endOfData).toMatch(/^250 2\.0\.0 Ok: queued as \w+$/);
  }, 60_000);
});
