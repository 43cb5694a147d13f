// `smmapctl sync` and `smmapctl import-cyrus` as an admin runs them, without Cyrus: sync reads a
// scripted IMAP server. A failed round leaves the store as it was; --every keeps it current;
// import-cyrus replaces what it is given, keeps the rest, and writes nothing when a dump is bad.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildOnce, ctlBatch, ctlOk, runCtl, runCtlAsync, sleep, spawnCtl, tempConfig } from '../helpers/base';
import { FakeImap } from '../helpers/fake-imap';


/** smmapctl without blocking this process: the scripted server answers from our event loop. */
const ctlAsync = runCtlAsync;

beforeAll(() => buildOnce());

describe('smmapctl sync (scripted IMAP server)', () => {
  let fake: FakeImap;
  let env: ReturnType<typeof tempConfig>;

  beforeEach(async () => {
    fake = new FakeImap();
    fake.mailboxes.set('user.fred', { acl: [['fred', 'lrswipkxtecda']] });
    fake.mailboxes.set('user.full', { acl: [], quota: { root: 'user.full', resources: 'STORAGE 3 1' } });
    fake.mailboxes.set('shared.pub', { acl: [['anyone', 'lrsp']] });
    await fake.start();
    env = tempConfig([
      'unixhierarchysep: no',
      `smmapd_imap_server: 127.0.0.1:${fake.port}`,
      'smmapd_imap_tls: none',
      'smmapd_imap_user: cyrus',
      'smmapd_imap_password: secret',
      'smmapd_imap_timeout: 1',
    ].join('\n'));
  });

  afterEach(async () => {
    await fake.stop();
    rmSync(env.dir, { recursive: true, force: true });
  });

  const ask = (): string[] => ctlOk(env.conf, ['query', 'fred', 'full', '+shared.pub', 'bob']);

  it('copies mailboxes, ACLs and quota roots; \\Noselect names are not mailboxes', async () => {
    const r = await ctlAsync(env.conf, ['sync']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^synced 3 mailboxes, 1 quota roots, 3 ACLs in \d+\.\d s\n$/);
    expect(ask()).toEqual(['OK fred', 'TEMP Over quota', 'OK +shared.pub', 'NOTFOUND Mailbox does not exist']);
    expect(ctlOk(env.conf, ['quota', 'list']).join('\n')).toMatch(/user\.full/);
  });

  it('one mailbox the server refuses to describe does not fail the round: it is recorded failing (TEMP), logged, the rest synced', async () => {
    fake.mailboxes.set('user.bad', { acl: [], quotaError: 'Mailbox has an invalid format' });
    fake.mailboxes.set('user.lost', { acl: [['lost', 'lrs']], quotaError: 'Quota root does not exist' });
    const r = await ctlAsync(env.conf, ['sync']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^synced 5 mailboxes \(1 failing: their lookups answer TEMP\), 1 quota roots, 4 ACLs in /);
    expect(r.stderr).toBe('smmapctl: sync: user.bad: the server refused to describe it (NO Mailbox has an invalid format): recorded as failing, its lookups answer TEMP\n');
    expect(ctlOk(env.conf, ['query', 'fred', 'bad', 'lost', 'full'])).toEqual(['OK fred', 'TEMP mailbox unavailable', 'OK lost', 'TEMP Over quota']);
  });

  it('a failed round (server wedged) exits non-zero within the deadline and leaves the store as it was', async () => {
    expect((await ctlAsync(env.conf, ['sync'])).code).toBe(0);
    fake.hang = true;
    const t0 = performance.now();
    const r = await ctlAsync(env.conf, ['sync']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/IMAP server did not answer/);
    expect(performance.now() - t0).toBeLessThan(5000);
    fake.hang = false;
    expect(ask()).toEqual(['OK fred', 'TEMP Over quota', 'OK +shared.pub', 'NOTFOUND Mailbox does not exist']);
  });

  it('--every keeps the replica current and outlives a failed round', async () => {
    const child = spawnCtl(env.conf, ['sync', '--every', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    try {
      const until = async (cond: () => boolean, ms: number): Promise<boolean> => {
        for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (cond()) return true;
        return cond();
      };
      expect(await until(() => /synced 3 mailboxes/.test(out), 5000)).toBe(true);
      fake.hang = true;
      expect(await until(() => /sync failed, store unchanged/.test(err), 6000)).toBe(true);
      fake.hang = false;
      fake.mailboxes.set('user.bob', { acl: [] });
      expect(await until(() => /synced 4 mailboxes/.test(out), 12_000)).toBe(true);
      expect(ask()[3]).toBe('OK bob');
    } finally {
      child.kill();
    }
  }, 40_000);

  it('needs an IMAP server', () => {
    const bare = tempConfig('');
    try {
      const r = runCtl(bare.conf, ['sync']);
      expect(r.code).toBe(64);
      expect(r.stderr).toMatch(/smmapd_imap_server/);
    } finally {
      rmSync(bare.dir, { recursive: true, force: true });
    }
  });
});

describe('smmapctl import-cyrus', () => {
  let env: ReturnType<typeof tempConfig>;
  const file = (name: string, text: string): string => {
    const p = join(env.dir, name);
    writeFileSync(p, text);
    return p;
  };
  const MBOXLIST = JSON.stringify({
    'user.fred': { name: 'user.fred', mbtype: 'e', acl: { fred: 'lrswipkxtecdan' } },
    'user.full': { name: 'user.full', mbtype: 'e', acl: { full: 'lrswipkxtecdan' } },
    'shared.pub': { name: 'shared.pub', mbtype: 'e', acl: { anyone: 'lrsp' } },
    'user.gone': { name: 'user.gone', mbtype: 'ed', acl: {} },
  });
  const QUOTA = '   Quota   % Used     Used             Resource Root\n       1      200        2              STORAGE user.full\n';
  const DENY = 'Username                       Service(s)           Message\nfred                           smmapd               on holiday\n';

  beforeEach(() => {
    env = tempConfig('unixhierarchysep: no');
  });
  afterEach(() => rmSync(env.dir, { recursive: true, force: true }));

  const ask = (): string[] => ctlOk(env.conf, ['query', 'fred', 'full', '+shared.pub', 'gone', 'old']);

  it('imports all three in one go', () => {
    expect(ctlOk(env.conf, ['import-cyrus', '--mboxlist', file('m', MBOXLIST), '--quota', file('q', QUOTA), '--deny', file('d', DENY)]))
      .toEqual(['imported 3 mailboxes, 1 quota roots, 1 deny entries']);
    expect(ask()).toEqual(['NOTFOUND on holiday', 'TEMP Over quota', 'OK +shared.pub', 'NOTFOUND Mailbox does not exist',
      'NOTFOUND Mailbox does not exist']);
  });

  it('replaces what is given and keeps the rest; - is standard input', () => {
    ctlBatch(env.conf, ['mailbox create user.old', 'deny add old --message bye']);
    ctlOk(env.conf, ['import-cyrus', '--mboxlist', '-'], MBOXLIST);
    // mailboxes replaced (user.old gone), deny list kept
    expect(ask()).toEqual(['OK fred', 'OK full', 'OK +shared.pub', 'NOTFOUND Mailbox does not exist', 'NOTFOUND bye']);
    ctlOk(env.conf, ['import-cyrus', '--deny', file('d', DENY)]);
    expect(ask()).toEqual(['NOTFOUND on holiday', 'OK full', 'OK +shared.pub', 'NOTFOUND Mailbox does not exist',
      'NOTFOUND Mailbox does not exist']);
  });

  it('a bad dump writes nothing', () => {
    ctlOk(env.conf, ['import-cyrus', '--mboxlist', file('m', MBOXLIST)]);
    const r = runCtl(env.conf, ['import-cyrus', '--mboxlist', file('m2', '{}'), '--quota', file('q', 'garbage\n')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/quota report line 1/);
    expect(ask().slice(0, 3)).toEqual(['OK fred', 'OK full', 'OK +shared.pub']);
  });

  it('wants at least one dump', () => {
    const r = runCtl(env.conf, ['import-cyrus']);
    expect(r.code).toBe(64);
  });
});
