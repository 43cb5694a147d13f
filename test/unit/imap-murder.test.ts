// The live IMAP store against a scripted Cyrus Murder frontend (test/helpers/fake-imap.ts,
// `murder`): the backend of each mailbox from its server annotation, what the frontend knows by
// itself kept through a backend's outage, one backend down or hung never slowing another, and
// recovery by itself. (Against a real Murder: test/integration/murder.test.ts.)
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configFromText } from '../../src/config';
import { verify, type CheckOptions } from '../../src/core/checks';
import { createImapStore } from '../../src/store/imap';
import { MemoryStore } from '../../src/store/memory';
import type { MailboxState, MailboxStore } from '../../src/store/store';
import { FakeImap } from '../helpers/fake-imap';
import { sleep } from '../helpers/base';


function storeFor(fake: FakeImap, logs: string[], pool = 2): MailboxStore {
  const cfg = configFromText([
    'smmapd_backend: imap',
    `smmapd_imap_server: 127.0.0.1:${fake.port}`,
    'smmapd_imap_tls: none',
    'smmapd_imap_user: cyrus',
    'smmapd_imap_password: secret',
    'smmapd_store: /nonexistent/smmapd.db',
    'smmapd_imap_timeout: 1',
    `smmapd_imap_pool_size: ${pool}`,
  ].join('\n'));
  return createImapStore(cfg, new MemoryStore(), (m) => logs.push(m));
}

const options: CheckOptions = {
  resolve: { virtdomains: 'off', defaultdomain: '', postuser: '', downcase: true, separator: '.', skipPlus: false },
  serviceName: 'smmapd',
  overQuotaPerm: false,
};

/** The value (or the error, as a value: a promise awaited later must not count as unhandled) and how long it took. */
async function timed<T>(p: Promise<T>): Promise<{ v: T | null; err: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    return { v: await p, err: null, ms: performance.now() - t0 };
  } catch (err) {
    return { v: null, err, ms: performance.now() - t0 };
  }
}

describe('live IMAP store through a Cyrus Murder frontend (scripted)', () => {
  let fake: FakeImap;
  let store: MailboxStore;
  const logs: string[] = [];

  beforeEach(async () => {
    fake = new FakeImap();
    fake.murder = true;
    fake.mailboxes.set('user.fred', { acl: [['fred', 'lrswipkxtecda']], backend: 'be1' });
    fake.mailboxes.set('user.full', { acl: [['full', 'lrswipkxtecda']], quota: { root: 'user.full', resources: 'STORAGE 2 1' }, backend: 'be1' });
    fake.mailboxes.set('user.wilma', { acl: [['wilma', 'lrswipkxtecda']], backend: 'be2' });
    fake.mailboxes.set('shared2.post', { acl: [['anyone', 'lrsp']], backend: 'be2' });
    fake.mailboxes.set('shared2.nopost', { acl: [['anyone', 'lrs']], backend: 'be2' });
    await fake.start();
    logs.length = 0;
    store = storeFor(fake, logs);
  });

  afterEach(async () => {
    await store.close();
    await fake.stop();
  });

  it('all up: the same answers as a single server; the backend asked once per mailbox', async () => {
    expect(await store.mailbox('user.fred', false)).toEqual({ acl: '', quota: null });
    expect(await store.mailbox('user.full', false)).toEqual({
      acl: '', quota: { root: 'user.full', storageLimitKiB: 1, messageLimit: null, storageUsed: 2048, messageUsed: 0 },
    });
    expect(await store.mailbox('shared2.nopost', true)).toEqual({ acl: 'anyone\tlrs\t', quota: null });
    expect(await store.mailbox('user.nosuch', false)).toBeNull();
    expect(fake.byCommand.get('GETMETADATA')).toBe(4);
    for (let i = 0; i < 5; i++) await store.mailbox('user.fred', false);
    expect(fake.byCommand.get('GETMETADATA')).toBe(4);
    expect(fake.overlaps).toBe(0);
  });

  it('a plain server (no MUPDATE) is asked as before: no GETMETADATA', async () => {
    fake.murder = false;
    const plain = storeFor(fake, []);
    try {
      expect(await plain.mailbox('user.fred', false)).toEqual({ acl: '', quota: null });
      expect(await plain.mailbox('user.nosuch', false)).toBeNull();
      expect(fake.byCommand.get('GETMETADATA')).toBeUndefined();
    } finally {
      await plain.close();
    }
  });

  it('a backend down: its quota unknown (TEMP naming it), what the frontend knows kept, the other backend unharmed', async () => {
    await store.mailbox('user.wilma', false);
    fake.backendsDown.add('be2');
    const failure = 'IMAP backend be2 unavailable';
    expect(await store.mailbox('user.wilma', false)).toEqual({ acl: '', quota: null, quotaFailure: failure });
    expect(await store.mailbox('shared2.nopost', true)).toEqual({ acl: 'anyone\tlrs\t', quota: null, quotaFailure: failure });
    expect(await store.mailbox('user.nosuch', false)).toBeNull();
    expect(await store.mailbox('user.fred', false)).toEqual({ acl: '', quota: null });
    expect(logs).toContain('IMAP backend be2 unavailable: NO Server(s) unavailable to complete operation');
    expect(logs.some((l) => /IMAP server .* unavailable/.test(l))).toBe(false);
    // through the checks: Cyrus's order
    const answer = async (key: string): Promise<string> => {
      const r = await verify(key, store, options);
      return `${r.status} ${r.text}`;
    };
    expect(await answer('wilma')).toBe(`TEMP ${failure}`);
    expect(await answer('+shared2.post')).toBe(`TEMP ${failure}`);
    expect(await answer('+shared2.nopost')).toBe('PERM Permission denied');
    expect(await answer('nosuch')).toBe('NOTFOUND Mailbox does not exist');
    expect(await answer('full')).toBe('TEMP Over quota');
    // back by itself (the failed lookup is the probe)
    fake.backendsDown.delete('be2');
    let back = false;
    for (let i = 0; i < 80 && !back; i++) {
      await sleep(100);
      back = (await store.mailbox('user.wilma', false))?.quotaFailure === undefined;
    }
    expect(back).toBe(true);
    expect(logs).toContain('IMAP backend be2 reachable again');
  });

  it('a backend hung: its lookups TEMP at the deadline then at once; the other backend at full speed meanwhile', async () => {
    await Promise.all([store.mailbox('user.wilma', false), store.mailbox('user.fred', false)]);
    fake.backendsHung.add('be2');
    const hung = [1, 2, 3].map(() => timed(Promise.resolve(store.mailbox('user.wilma', false))));
    await sleep(100);
    const healthy: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await timed(Promise.resolve(store.mailbox(i % 2 ? 'user.fred' : 'user.full', false)));
      expect(r.v).not.toBeNull();
      healthy.push(r.ms);
      await sleep(100);
    }
    expect(Math.max(...healthy)).toBeLessThan(300);
    for (const h of await Promise.all(hung)) {
      expect(h.v?.quotaFailure).toBe('IMAP backend be2 unavailable');
      expect(h.ms).toBeLessThan(1600);
    }
    const again = await timed(Promise.resolve(store.mailbox('user.wilma', false)));
    expect(again.v?.quotaFailure).toBe('IMAP backend be2 unavailable');
    expect(again.ms).toBeLessThan(100);
    expect(logs).toContain('IMAP backend be2 unavailable: no answer within the deadline');
    // and be1 still answers while be2's probe holds its one session
    expect(await store.mailbox('user.fred', false)).toEqual({ acl: '', quota: null });
    fake.backendsHung.delete('be2');
    let back = false;
    for (let i = 0; i < 100 && !back; i++) {
      await sleep(100);
      const st: MailboxState | null = await store.mailbox('user.wilma', false);
      back = st !== null && st.quotaFailure === undefined;
    }
    expect(back).toBe(true);
  }, 20_000);
});
