// The in-memory driver keeps both contracts as the SQLite store does: the same script of admin
// operations leaves the same mailboxes, ACLs and quota roots, and lookups answer the same.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/store/memory';
import { SqliteStore } from '../../src/store/sqlite';
import { SqliteAdmin } from '../../src/store/sqlite-admin';
import { StoreError, type MailboxStore, type StoreAdmin } from '../../src/store/store';

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

function script(a: StoreAdmin): string[] {
  const out: string[] = [];
  const attempt = (f: () => unknown): void => {
    try {
      out.push(JSON.stringify(f()));
    } catch (e) {
      out.push(`${(e as Error).name}: ${(e as Error).message}`);
    }
  };
  attempt(() => a.createMailbox('user.fred'));
  attempt(() => a.createMailbox('user.fred.sub'));
  attempt(() => a.setAcl('user.fred.sub', 'anyone', 'p'));
  attempt(() => a.createMailbox('user.fred.sub.deep'));
  attempt(() => a.createMailbox('shared'));
  attempt(() => a.createMailbox('shared.pub'));
  attempt(() => a.createMailbox('user.fred'));
  attempt(() => a.createMailbox('example.com!user.bob'));
  attempt(() => a.setQuota('user.fred', { storageLimitKiB: 10 }));
  attempt(() => a.setQuotaUsage('user.fred', { storageUsed: 20_000 }));
  attempt(() => a.setQuota('user.fred.sub', { messageLimit: 1 }));
  attempt(() => a.setQuota('example.com!', { messageLimit: 0 }));
  attempt(() => a.setQuotaUsage('nosuch', { messageUsed: 1 }));
  attempt(() => a.setQuota('x', { messageLimit: -1 }));
  attempt(() => a.transaction(() => { a.createMailbox('user.rolledback'); throw new Error('no'); }));
  attempt(() => a.getMailbox('user.rolledback'));
  attempt(() => a.deleteMailbox('user.nosuch'));
  attempt(() => a.setDeny('mallory', 'smmapd', 'go away'));
  attempt(() => a.listMailboxes());
  attempt(() => a.listQuotas());
  attempt(() => a.deleteMailbox('user.fred'));
  attempt(() => a.listMailboxes());
  attempt(() => a.listQuotas());
  attempt(() => a.listDeny());
  return out;
}

async function reads(s: MailboxStore): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const n of ['user.fred', 'user.fred.sub', 'shared.pub', 'example.com!user.bob', 'user.nosuch']) out.push(await s.mailbox(n));
  out.push(await s.denyEntry('mallory'), await s.denyEntry('nobody'));
  return out;
}

describe('memory store', () => {
  it('the same admin script gives the same results and the same lookups as SQLite', async () => {
    dir = mkdtempSync(join(tmpdir(), 'smmapd-mem-'));
    const path = join(dir, 's.db');
    const sqlite = new SqliteAdmin(path);
    const memory = new MemoryStore();
    expect(script(memory)).toEqual(script(sqlite));
    sqlite.createMailbox('user.fred');
    memory.createMailbox('user.fred');
    const reader = new SqliteStore(path);
    expect(await reads(memory)).toEqual(await reads(reader));
    reader.close();
    sqlite.close();
  });

  it('answers asynchronously, fails on demand, holds failing mailboxes as TEMP, and counts changes', async () => {
    const s = new MemoryStore({ async: true, fail: { deny: new StoreError('down') } });
    s.replaceSnapshot({ mailboxes: [{ name: 'user.a', acl: '' }, { name: 'user.b', acl: '', failure: 'bad' }], quotas: [] });
    const c0 = s.changeCounter();
    await expect(s.mailbox('user.a')).resolves.toEqual({ acl: '', quota: null });
    await expect(s.mailbox('user.b')).rejects.toMatchObject({ reply: 'mailbox unavailable' });
    await expect(s.denyEntry('a')).rejects.toThrow('down');
    s.createMailbox('user.c');
    expect(s.changeCounter()).not.toBe(c0);
    expect(s.calls).toEqual(['mailbox user.a', 'mailbox user.b', 'deny a']);
  });
});
