import { describe, it, expect } from 'vitest';
import { verify, type CheckOptions } from '../../src/core/checks';
import { isPromise } from '../../src/core/contract';
import type { Reply } from '../../src/core/reply';
import { memoryStore, type MemoryStore } from '../../src/store/memory';
import { StoreError, type DenyEntry, type MailboxState, type MailboxStore, type QuotaState } from '../../src/store/store';
import { SPEC_TABLE } from '../fixtures/spec-table';

type Mode = 'sync' | 'async';

/** The memory driver holding `boxes` (each quota recorded at its root) and `deny`; it records what it was asked. */
function fakeStore(boxes: Record<string, MailboxState>, deny: Record<string, DenyEntry> = {}, mode: Mode = 'sync'): MemoryStore {
  const quotas = new Map<string, QuotaState>();
  for (const b of Object.values(boxes)) if (b.quota !== null) quotas.set(b.quota.root, b.quota);
  return memoryStore(
    { mailboxes: Object.entries(boxes).map(([name, b]) => ({ name, acl: b.acl })), quotas: [...quotas.values()] },
    Object.values(deny),
    { async: mode === 'async' },
  );
}

/** A store whose every read of one kind fails: by throwing (sync), or by rejecting (async). */
function failingStore(how: 'throw' | 'reject' | 'throw-plain', where: 'deny' | 'mailbox' = 'deny'): MailboxStore {
  const error = how === 'throw' ? new StoreError('store locked') : how === 'throw-plain' ? new Error('disk on fire') : new StoreError('imap server unreachable');
  return memoryStore({ mailboxes: [{ name: 'user.fred', acl: '' }], quotas: [] }, [], { async: how === 'reject', fail: { [where]: error } });
}

function box(acl = '', quota: QuotaState | null = null): MailboxState {
  return { acl, quota };
}

function quota(root: string, o: Partial<QuotaState>): QuotaState {
  return { root, storageLimitKiB: null, messageLimit: null, storageUsed: 0, messageUsed: 0, ...o };
}

/** behaviour §4's Cyrus 3.6 mailboxes (unixhierarchysep: no, virtdomains: off). */
function section4Boxes(): Record<string, MailboxState> {
  const owner = (u: string): string => `${u}\tlrswipkxtecdan\t`;
  return {
    'user.fred': box(owner('fred')),
    'user.fred.sub': box(owner('fred')),
    'user.fred.Mixed': box(owner('fred')),
    'user.full': box(owner('full'), quota('user.full', { storageLimitKiB: 1, storageUsed: 2048 })),
    'user.quotamsg': box(owner('quotamsg'), quota('user.quotamsg', { messageLimit: 1, messageUsed: 1 })),
    'shared.pub': box('anyone\tlrsp\t'),
    'shared.nopost': box('anyone\tlrs\t'),
    'shared.hidden': box(''),
    'user.Upper': box(owner('Upper')),
  };
}

function options(o: Partial<CheckOptions> = {}, resolve: Partial<CheckOptions['resolve']> = {}): CheckOptions {
  return {
    serviceName: 'smmapd',
    overQuotaPerm: false,
    ...o,
    resolve: {
      virtdomains: 'off', defaultdomain: '', postuser: '', downcase: true, separator: '.', skipPlus: false, ...resolve,
    },
  };
}

async function answer(key: string | null, store: MailboxStore, o: CheckOptions): Promise<string> {
  const r: Reply = await verify(key, store, o);
  return `${r.status} ${r.text}`;
}

for (const mode of ['sync', 'async'] as const) {
  describe(`verify with a ${mode} store`, () => {
    describe('the behaviour §4 table', () => {
      it.each(SPEC_TABLE)('%j → %s', async (key, want) => {
        expect(await answer(key, fakeStore(section4Boxes(), {}, mode), options())).toBe(want);
      });
    });

    it('answers synchronously exactly when the store does', () => {
      const r = verify('fred', fakeStore(section4Boxes(), {}, mode), options());
      expect(isPromise(r)).toBe(mode === 'async');
    });

    it('echoes the key exactly as received', async () => {
      expect(await answer('FRED+sub@Example.COM', fakeStore(section4Boxes(), {}, mode), options()))
        .toBe('OK FRED+sub@Example.COM');
    });

    it('a key that is not UTF-8 (null) or holds a control character names no mailbox', async () => {
      const store = fakeStore(section4Boxes(), {}, mode);
      expect(await answer(null, store, options())).toBe('NOTFOUND Mailbox does not exist');
      expect(await answer('fred\x00', store, options())).toBe('NOTFOUND Mailbox does not exist');
      expect(store.calls).toEqual([]);
    });

    it('asks the store for an ACL only where it reads one: shared folders, never a user\'s own', async () => {
      const store = fakeStore(section4Boxes(), {}, mode);
      await answer('fred+sub', store, options());
      await answer('+shared.pub', store, options());
      expect(store.aclWanted).toEqual([false, true]);
    });

    describe('the deny list (behaviour §3.1)', () => {
      const deny = (services: string, message = ''): Record<string, DenyEntry> => ({ fred: { userid: 'fred', services, message } });

      it('comes before existence: a denied user gets the deny message, the mailbox is never asked', async () => {
        const store = fakeStore({}, deny('*', 'Go away'), mode);
        expect(await answer('fred+nosuch', store, options())).toBe('NOTFOUND Go away');
        expect(store.calls).toEqual(['deny fred']);
      });

      it('uses the default message, with control characters replaced by spaces', async () => {
        expect(await answer('fred', fakeStore(section4Boxes(), deny('*'), mode), options()))
          .toBe('NOTFOUND Access to this service has been blocked');
        expect(await answer('fred', fakeStore(section4Boxes(), deny('*', 'a\tb\r\nc\x7f'), mode), options()))
          .toBe('NOTFOUND a b  c ');
      });

      it('is looked up with the userid alone, never the detail, whatever -p says', async () => {
        for (const skipPlus of [false, true]) {
          const store = fakeStore(section4Boxes(), deny('*'), mode);
          expect(await answer('Fred+sub', store, options({}, { skipPlus }))).toBe('NOTFOUND Access to this service has been blocked');
          expect(store.calls).toEqual(['deny fred']);
        }
      });

      it('matches the service name with wildmat, first match deciding', async () => {
        const boxes = section4Boxes();
        expect(await answer('fred', fakeStore(boxes, deny('imapd,pop3d'), mode), options())).toBe('OK fred');
        expect(await answer('fred', fakeStore(boxes, deny('!smmapd,*'), mode), options())).toBe('OK fred');
        expect(await answer('fred', fakeStore(boxes, deny('smm*'), mode), options())).toBe('NOTFOUND Access to this service has been blocked');
        expect(await answer('fred', fakeStore(boxes, deny('smm*'), mode), options({ serviceName: 'verify' }))).toBe('OK fred');
      });

      it('uses userid@domain for a virtual domain', async () => {
        const store = fakeStore({ 'example.com!user.fred': box() },
          { 'fred@example.com': { userid: 'fred@example.com', services: '*', message: 'x' } }, mode);
        expect(await answer('fred@example.com', store, options({}, { virtdomains: 'on' }))).toBe('NOTFOUND x');
      });

      it('never applies to shared folders: they have no userid', async () => {
        const store = fakeStore(section4Boxes(), { '': { userid: '', services: '*', message: 'x' } }, mode);
        expect(await answer('+shared.pub', store, options())).toBe('OK +shared.pub');
        expect(store.calls).toEqual(['mailbox shared.pub']);
      });
    });

    describe('ACLs (behaviour §3.3)', () => {
      it('a user\'s own folders are never ACL-checked', async () => {
        const store = fakeStore({ 'user.fred': box(''), 'user.fred.x': box('-anyone\tlrswipkxtecdan\t') }, {}, mode);
        expect(await answer('fred', store, options())).toBe('OK fred');
        expect(await answer('fred+x', store, options())).toBe('OK fred+x');
      });

      it('a shared folder needs the anonymous post right', async () => {
        const store = fakeStore({
          'shared.a': box('anonymous\tp\t'),
          'shared.b': box('anyone\tlrsp\t-anyone\tp\t'),
          'shared.c': box('anyone\tlrsp\t-anonymous\tl\t'),
          'shared.d': box('fred\tlrswipkxtecdan\t'),
          'shared.e': box('anyone\tlrsp\t-anyone\tlp\t'),
        }, {}, mode);
        expect(await answer('+shared.a', store, options())).toBe('OK +shared.a');
        expect(await answer('+shared.b', store, options())).toBe('PERM Permission denied');
        expect(await answer('+shared.c', store, options())).toBe('OK +shared.c');
        expect(await answer('+shared.d', store, options())).toBe('NOTFOUND Mailbox does not exist');
        expect(await answer('+shared.e', store, options())).toBe('NOTFOUND Mailbox does not exist');
      });

      it('postuser bb: bb+shared.pub is the shared folder', async () => {
        const store = fakeStore(section4Boxes(), {}, mode);
        expect(await answer('bb+shared.pub', store, options({}, { postuser: 'bb' }))).toBe('OK bb+shared.pub');
        expect(await answer('bb+shared.nopost', store, options({}, { postuser: 'bb' }))).toBe('PERM Permission denied');
      });
    });

    describe('quota (behaviour §3.4)', () => {
      it('over quota is PERM with lmtp_over_quota_perm_failure', async () => {
        const store = fakeStore(section4Boxes(), {}, mode);
        expect(await answer('full', store, options({ overQuotaPerm: true }))).toBe('PERM Over quota');
        expect(await answer('quotamsg', store, options({ overQuotaPerm: true }))).toBe('PERM Over quota');
      });

      it('exactly at the limit is fine', async () => {
        const store = fakeStore({ 'user.fred': box('', quota('user.fred', { storageLimitKiB: 1, storageUsed: 1024, messageLimit: 2, messageUsed: 1 })) }, {}, mode);
        expect(await answer('fred', store, options())).toBe('OK fred');
      });

      it('comes after the ACL check for shared folders', async () => {
        const store = fakeStore({ 'shared.x': box('anyone\tlrs\t', quota('shared', { messageLimit: 0 })) }, {}, mode);
        expect(await answer('+shared.x', store, options())).toBe('PERM Permission denied');
      });
    });

    it('reports outcomes for the audit log', async () => {
      const store = fakeStore(section4Boxes(), { quotamsg: { userid: 'quotamsg', services: '*', message: '' } }, mode);
      const outcome = async (key: string): Promise<string> => (await verify(key, store, options())).outcome;
      expect(await outcome('fred')).toBe('ok');
      expect(await outcome('fred+nosuch')).toBe('nonexistent');
      expect(await outcome('full')).toBe('overquota');
      expect(await outcome('quotamsg')).toBe('denied');
      expect(await outcome('+shared.nopost')).toBe('failed');
    });
  });
}

describe('verify when the store fails (behaviour §3, last paragraph)', () => {
  it.each([
    ['throw', 'deny', 'TEMP store locked'],
    ['throw', 'mailbox', 'TEMP store locked'],
    ['reject', 'deny', 'TEMP imap server unreachable'],
    ['reject', 'mailbox', 'TEMP imap server unreachable'],
    ['throw-plain', 'deny', 'TEMP store error'],
    ['throw-plain', 'mailbox', 'TEMP store error'],
  ] as const)('%s in %s → %s', async (how, where, want) => {
    expect(await answer('fred', failingStore(how, where), options())).toBe(want);
  });

  it('a thrown StoreError answers synchronously, never throws', () => {
    const r = verify('fred', failingStore('throw'), options());
    expect(isPromise(r)).toBe(false);
    expect(r).toMatchObject({ status: 'TEMP', text: 'store locked', outcome: 'failed' });
  });

  it('a TEMP reply says what failed in a few words: no path, no newline, no stack (the log has those)', () => {
    const stack = "store unavailable: /var/lib/smmapd/smmapd.db: Cannot find module 'bindings'\nRequire stack:\n- /usr/lib/node_modules/x.js";
    const cases: Array<[StoreError, string]> = [
      [new StoreError(stack), 'store unavailable'],
      [new StoreError('/var/lib/smmapd/smmapd.db: not an smmapd store'), 'store unavailable'],
      [new StoreError('store locked: /x/y.db: database is locked (waited 500 ms)'), 'store locked'],
      [new StoreError('IMAP connection failed: ECONNREFUSED', { reply: 'IMAP server unavailable' }), 'IMAP server unavailable'],
      [new StoreError('bad\x00\x1bthing\r\nmore'), 'bad  thing'],
    ];
    for (const [err, want] of cases) {
      const store = memoryStore({ mailboxes: [], quotas: [] }, [], { fail: { deny: err } });
      expect(verify('fred', store, options())).toMatchObject({ status: 'TEMP', text: want });
    }
  });

  it('a shared folder lookup failing is TEMP too', async () => {
    expect(await answer('+shared.pub', failingStore('throw', 'mailbox'), options())).toBe('TEMP store locked');
  });
});
