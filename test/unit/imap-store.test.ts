// The live IMAP store against a scripted server: answers, the session pool, deadlines, fail-fast
// while down, and recovery by itself. (Against the real Cyrus: test/integration/imap-*.test.ts.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configFromText } from '../../src/config';
import { createImapStore } from '../../src/store/imap';
import { MemoryStore } from '../../src/store/memory';
import { StoreError, type MailboxStore } from '../../src/store/store';
import { FakeImap } from '../helpers/fake-imap';
import { sleep } from '../helpers/base';

const noDeny: MailboxStore = new MemoryStore();

function storeFor(fake: FakeImap, extra = '', logs: string[] = []): MailboxStore {
  const cfg = configFromText([
    `smmapd_backend: imap`,
    `smmapd_imap_server: 127.0.0.1:${fake.port}`,
    'smmapd_imap_tls: none',
    'smmapd_imap_user: cyrus',
    'smmapd_store: /nonexistent/smmapd.db',
    extra || 'smmapd_imap_password: secret',
    'smmapd_imap_timeout: 1',
    'smmapd_imap_pool_size: 2',
    'virtdomains: userid',
  ].join('\n'));
  return createImapStore(cfg, noDeny, (m) => logs.push(m));
}

async function timed<T>(p: Promise<T>): Promise<{ ok: T | null; err: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    return { ok: await p, err: null, ms: performance.now() - t0 };
  } catch (e) {
    return { ok: null, err: e, ms: performance.now() - t0 };
  }
}

describe('live IMAP store (scripted server)', () => {
  let fake: FakeImap;
  let store: MailboxStore;
  const logs: string[] = [];

  beforeEach(async () => {
    fake = new FakeImap();
    fake.mailboxes.set('user.fred', { acl: [['fred', 'lrswipkxtecda']] });
    fake.mailboxes.set('user.full', { acl: [['full', 'lrswipkxtecda']], quota: { root: 'user.full', resources: 'STORAGE 2 1 MESSAGE 0 10' } });
    fake.mailboxes.set('user.full.sub', { acl: [], quota: { root: 'user.full', resources: 'STORAGE 2 1' } });
    fake.mailboxes.set('shared.pub', { acl: [['anyone', 'lrsp'], ['-anonymous', 'p']] });
    fake.mailboxes.set('user.bob@example.com', { acl: [] });
    fake.domainRoots.set('@example.com', 'MESSAGE 5 5');
    await fake.start();
    logs.length = 0;
    store = storeFor(fake, '', logs);
  });

  afterEach(async () => {
    await store.close();
    await fake.stop();
  });

  it('existence, ACL text, the governing root with KiB usage × 1024, domain roots', async () => {
    expect(await store.mailbox('user.fred')).toEqual({ acl: 'fred\tlrswipkxtecda\t', quota: null });
    expect(await store.mailbox('user.nosuch')).toBeNull();
    expect(await store.mailbox('user.full.sub')).toEqual({
      acl: '',
      quota: { root: 'user.full', storageLimitKiB: 1, messageLimit: null, storageUsed: 2048, messageUsed: 0 },
    });
    expect((await store.mailbox('shared.pub'))!.acl).toBe('anyone\tlrsp\t-anonymous\tp\t');
    expect((await store.mailbox('example.com!user.bob'))!.quota).toEqual(
      { root: 'example.com!', storageLimitKiB: null, messageLimit: 5, storageUsed: 0, messageUsed: 5 });
    // A domain with no root, and an empty domain (no IMAP name reaches it).
    expect(await store.mailbox('example.net!user.bob')).toBeNull();
    expect(await store.mailbox('!user.fred')).toBeNull();
  });

  it('"NO Quota root does not exist" is an existing mailbox without a quota; only NONEXISTENT or "Mailbox does not exist" is missing', async () => {
    fake.mailboxes.set('user.lost', { acl: [['lost', 'lrs']], quotaError: 'Quota root does not exist' });
    fake.mailboxes.set('user.bad', { acl: [], quotaError: 'Mailbox has an invalid format' });
    fake.mailboxes.set('user.gone', { acl: [], quotaError: '[NONEXISTENT] Something else does not exist' });
    expect(await store.mailbox('user.lost')).toEqual({ acl: 'lost\tlrs\t', quota: null });
    expect(await store.mailbox('user.gone')).toBeNull();
    const bad = await timed(Promise.resolve(store.mailbox('user.bad')));
    expect(bad.err).toBeInstanceOf(StoreError);
    expect((bad.err as StoreError).reply).toBe('IMAP server refused');
    await timed(Promise.resolve(store.mailbox('user.bad')));
    expect(logs.filter((l) => l.startsWith('IMAP server refused'))).toEqual(['IMAP server refused: NO Mailbox has an invalid format']);
  });

  it('a missing deny store means no deny list', async () => {
    expect(await store.denyEntry('fred')).toBeNull();
  });

  it('reuses at most pool-size sessions, one command at a time on each', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.mailbox(i % 2 ? 'user.fred' : 'user.full')));
    await Promise.all(Array.from({ length: 50 }, () => store.mailbox('shared.pub')));
    expect(fake.connections).toBeLessThanOrEqual(2);
    expect(fake.overlaps).toBe(0);
  });

  it('a wedged server: TEMP within the deadline, then at once; back by itself', async () => {
    await store.mailbox('user.fred');
    fake.hang = true;
    const first = await timed(Promise.resolve(store.mailbox('user.fred')));
    expect(first.err).toBeInstanceOf(StoreError);
    expect(first.ms).toBeGreaterThan(900);
    expect(first.ms).toBeLessThan(1500);
    const next = await timed(Promise.resolve(store.mailbox('user.fred')));
    expect(next.err).toBeInstanceOf(StoreError);
    expect(next.ms).toBeLessThan(50);
    expect(logs.some((l) => /unavailable/.test(l))).toBe(true);
    fake.hang = false;
    let back = false;
    for (let i = 0; i < 80 && !back; i++) {
      await sleep(100);
      back = (await timed(Promise.resolve(store.mailbox('user.fred')))).ok !== null;
    }
    expect(back).toBe(true);
    expect(logs.some((l) => /reachable again/.test(l))).toBe(true);
  });

  it('a server gone (refused): fails fast, recovers when it listens again', async () => {
    await store.mailbox('user.fred');
    const port = fake.port;
    await fake.stop();
    const r1 = await timed(Promise.resolve(store.mailbox('user.fred')));
    expect(r1.err).toBeInstanceOf(StoreError);
    expect(r1.ms).toBeLessThan(1500);
    const r2 = await timed(Promise.resolve(store.mailbox('user.fred')));
    expect(r2.err).toBeInstanceOf(StoreError);
    expect(r2.ms).toBeLessThan(50);
    await fake.start(port);
    let back = false;
    for (let i = 0; i < 80 && !back; i++) {
      await sleep(100);
      back = (await timed(Promise.resolve(store.mailbox('user.fred')))).ok !== null;
    }
    expect(back).toBe(true);
  });

  it('a wrong password is TEMP, never an answer', async () => {
    const s2 = storeFor(fake, 'smmapd_imap_password: wrong');
    try {
      const r = await timed(Promise.resolve(s2.mailbox('user.fred')));
      expect(r.err).toBeInstanceOf(StoreError);
    } finally {
      await s2.close();
    }
  });

  it('the password file: its first line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smmapd-pw-'));
    try {
      writeFileSync(join(dir, 'pw'), 'secret\nsomething else\n');
      const s2 = storeFor(fake, `smmapd_imap_password_file: ${join(dir, 'pw')}`);
      try {
        expect(await s2.mailbox('user.fred')).not.toBeNull();
      } finally {
        await s2.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
