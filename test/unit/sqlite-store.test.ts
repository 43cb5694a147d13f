// The SQLite driver in-process: lookups, the snapshot each run of code reads, failure and
// recovery with one log line per change of state, migrations, replaceSnapshot.
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite';
import { SqliteAdmin } from '../../src/store/sqlite-admin';
import { APPLICATION_ID, MIGRATIONS } from '../../src/store/sqlite-schema';
import { StoreError } from '../../src/store/store';

let dir: string;
let path: string;
const closers: Array<{ close(): void }> = [];
const track = <T extends { close(): void }>(x: T): T => (closers.push(x), x);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'smmapd-sqlite-'));
  path = join(dir, 'smmapd.db');
});
afterEach(() => {
  for (const c of closers.splice(0)) c.close();
  rmSync(dir, { recursive: true, force: true });
});

function provision(): SqliteAdmin {
  const admin = track(new SqliteAdmin(path));
  admin.transaction(() => {
    admin.createMailbox('user.fred', 'fred\tlrswipkxtecdan\t');
    admin.createMailbox('user.fred.sub', 'fred\tlrswipkxtecdan\t');
    admin.createMailbox('user.fred.sub.deep', 'fred\tlrswipkxtecdan\t');
    admin.createMailbox('example.com!user.joe', 'joe@example.com\tlrswipkxtecdan\t');
    admin.createMailbox('shared.pub', 'anyone\tlrsp\t');
    admin.setQuota('user.fred', { storageLimitKiB: 10, messageLimit: null });
    admin.setQuotaUsage('user.fred', { storageUsed: 1234, messageUsed: 2 });
    admin.setQuota('user.fred.sub', { messageLimit: 5 });
    admin.setQuota('example.com!', { storageLimitKiB: 1000 });
    admin.setDeny('bad', 'imap,pop3', 'go away');
  });
  return admin;
}

describe('lookups', () => {
  it('finds the mailbox, its ACL and the governing quota root', () => {
    provision();
    const s = track(new SqliteStore(path));
    expect(s.mailbox('user.fred')).toEqual({
      acl: 'fred\tlrswipkxtecdan\t',
      quota: { root: 'user.fred', storageLimitKiB: 10, messageLimit: null, storageUsed: 1234, messageUsed: 2 },
    });
    // the nearest root wins
    expect(s.mailbox('user.fred.sub.deep')?.quota?.root).toBe('user.fred.sub');
    // a domain's own root covers its mailboxes
    expect(s.mailbox('example.com!user.joe')?.quota).toEqual({
      root: 'example.com!', storageLimitKiB: 1000, messageLimit: null, storageUsed: 0, messageUsed: 0,
    });
    expect(s.mailbox('shared.pub')).toEqual({ acl: 'anyone\tlrsp\t', quota: null });
    expect(s.mailbox('user.nosuch')).toBeNull();
    expect(s.mailbox('User.fred')).toBeNull(); // names are case-sensitive
    expect(s.denyEntry('bad')).toEqual({ userid: 'bad', services: 'imap,pop3', message: 'go away' });
    expect(s.denyEntry('good')).toBeNull();
  });

  it('one run of code reads one snapshot; the next sees the change, and the counter moves', async () => {
    const admin = provision();
    const s = track(new SqliteStore(path));
    const c0 = s.changeCounter();
    expect(s.mailbox('user.fred')).not.toBeNull();
    admin.replaceSnapshot({ mailboxes: [{ name: 'user.new', acl: '' }], quotas: [] });
    // same synchronous run: still the old snapshot, whole
    expect(s.mailbox('user.fred')).not.toBeNull();
    expect(s.mailbox('user.new')).toBeNull();
    expect(s.changeCounter()).toBe(c0);
    await null;
    expect(s.mailbox('user.fred')).toBeNull();
    expect(s.mailbox('user.new')).toEqual({ acl: '', quota: null });
    const c1 = s.changeCounter();
    expect(c1).not.toBe(c0);
    await null;
    expect(s.changeCounter()).toBe(c1);
    // the deny list is not part of a snapshot
    expect(s.denyEntry('bad')).not.toBeNull();
  });
});

describe('failures', () => {
  it('missing file: StoreError, logged once, never created, recovers by itself (throttled)', async () => {
    const log: string[] = [];
    vi.useFakeTimers({ toFake: ['Date'] }); // the retry throttle reads Date.now()
    onTestFinished(() => void vi.useRealTimers());
    const s = track(new SqliteStore(path, { retryIntervalMs: 100, log: (m) => log.push(m) }));
    expect(() => s.mailbox('user.fred')).toThrow(StoreError);
    expect(() => s.mailbox('user.fred')).toThrow(`store unavailable: ${path}: unable to open database file`);
    expect(() => s.denyEntry('fred')).toThrow(StoreError);
    expect(Number.isNaN(s.changeCounter())).toBe(true);
    expect(log).toEqual([`store unavailable: ${path}: unable to open database file`]);
    expect(existsSync(path)).toBe(false);
    provision();
    // within the retry interval the cached failure stands
    expect(() => s.mailbox('user.fred')).toThrow(StoreError);
    await vi.advanceTimersByTimeAsync(150);
    expect(s.mailbox('user.fred')).not.toBeNull();
    expect(log).toEqual([`store unavailable: ${path}: unable to open database file`, `store available again: ${path}`]);
  });

  it('corrupt file: StoreError', () => {
    writeFileSync(path, 'garbage '.repeat(1000));
    const s = track(new SqliteStore(path));
    expect(() => s.mailbox('user.fred')).toThrow(`store unavailable: ${path}: file is not a database`);
  });

  it('locked past the busy timeout: StoreError, logged once; fine again when released', () => {
    provision().close(); // every other connection gone, or the exclusive lock cannot be had
    const locker = track(new Database(path));
    locker.pragma('locking_mode = EXCLUSIVE');
    locker.exec('BEGIN EXCLUSIVE');
    locker.prepare("INSERT INTO deny (userid) VALUES ('x')").run();
    const log: string[] = [];
    const s = track(new SqliteStore(path, { busyTimeoutMs: 50, log: (m) => log.push(m) }));
    const msg = `store locked: ${path}: database is locked (waited 50 ms)`;
    expect(() => s.mailbox('user.fred')).toThrow(msg);
    expect(() => s.mailbox('user.fred')).toThrow(msg); // a lock is retried at once, not throttled
    expect(log).toEqual([msg]);
    locker.exec('COMMIT');
    locker.close();
    expect(s.mailbox('user.fred')).not.toBeNull();
    expect(s.denyEntry('x')).not.toBeNull();
    expect(log).toEqual([msg, `store available again: ${path}`]);
  });

  it('a lock costs one busy timeout, not one per lookup: the others fail at once until it is free', () => {
    provision().close();
    const locker = track(new Database(path));
    locker.pragma('locking_mode = EXCLUSIVE');
    locker.exec('BEGIN EXCLUSIVE');
    locker.prepare("INSERT INTO deny (userid) VALUES ('x')").run();
    const s = track(new SqliteStore(path, { busyTimeoutMs: 300 }));
    let t = Date.now();
    expect(() => s.mailbox('user.fred')).toThrow(StoreError);
    expect(Date.now() - t).toBeGreaterThanOrEqual(290);
    t = Date.now();
    for (let i = 0; i < 10; i++) {
      try {
        s.denyEntry('fred');
        expect.unreachable();
      } catch (e) {
        expect((e as StoreError).reply).toBe('store locked');
      }
    }
    expect(Date.now() - t).toBeLessThan(100);
    locker.exec('COMMIT');
    locker.close();
    expect(s.denyEntry('x')).not.toBeNull();
  });

  it('a store replaced by rename (a restored backup) is seen at the next lookup; one moved away is TEMP', async () => {
    vi.useFakeTimers({ toFake: ['Date'] }); // the stat throttle and the retry read Date.now()
    onTestFinished(() => void vi.useRealTimers());
    provision().close();
    const s = track(new SqliteStore(path, { retryIntervalMs: 50 }));
    expect(s.mailbox('user.fred')).not.toBeNull();
    const c0 = s.changeCounter();
    const other = join(dir, 'other.db');
    const admin = new SqliteAdmin(other);
    admin.createMailbox('user.barney', '');
    admin.close();
    renameSync(other, path);
    await vi.advanceTimersByTimeAsync(2); // the clock moves, the snapshot's microtask runs
    expect(s.mailbox('user.fred')).toBeNull();
    expect(s.mailbox('user.barney')).not.toBeNull();
    expect(s.changeCounter()).not.toBe(c0);
    renameSync(path, join(dir, 'gone.db'));
    await vi.advanceTimersByTimeAsync(2); // the clock moves, the snapshot's microtask runs
    expect(() => s.mailbox('user.barney')).toThrow(StoreError);
    try {
      s.mailbox('user.barney');
    } catch (e) {
      expect((e as StoreError).reply).toBe('store unavailable');
      expect((e as StoreError).message).toContain(path); // the log gets the path, the client does not
    }
    expect(Number.isNaN(s.changeCounter())).toBe(true);
    renameSync(join(dir, 'gone.db'), path);
    await vi.advanceTimersByTimeAsync(60);
    expect(s.mailbox('user.barney')).not.toBeNull();
  });

  it('close(): lookups fail cleanly afterwards', () => {
    provision();
    const s = new SqliteStore(path);
    expect(s.mailbox('user.fred')).not.toBeNull();
    s.close();
    expect(() => s.mailbox('user.fred')).toThrow('store closed');
  });
});

describe('format 2: mailboxes a sync could not read', () => {
  it('a mailbox recorded as failing answers StoreError (TEMP mailbox unavailable), the others as usual', () => {
    const admin = provision();
    admin.replaceSnapshot({ mailboxes: [{ name: 'user.ok', acl: '' }, { name: 'user.bad', acl: '', failure: 'Mailbox has an invalid format' }], quotas: [] });
    const s = track(new SqliteStore(path));
    expect(s.mailbox('user.ok')).toEqual({ acl: '', quota: null });
    expect(() => s.mailbox('user.bad')).toThrow(/user\.bad: .*Mailbox has an invalid format/);
    try {
      s.mailbox('user.bad');
    } catch (e) {
      expect((e as StoreError).reply).toBe('mailbox unavailable');
    }
    expect(s.mailbox('user.ok')).not.toBeNull(); // one failing mailbox is not a failing store
  });

  it('a format 1 store (before the failure column) is still read by the daemon, and upgraded by smmapctl', () => {
    const db = new Database(path);
    db.exec(MIGRATIONS[0]!);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma('user_version = 1');
    db.prepare("INSERT INTO mailboxes (name, acl) VALUES ('user.fred', '')").run();
    db.close();
    const s = track(new SqliteStore(path));
    expect(s.mailbox('user.fred')).toEqual({ acl: '', quota: null });
    s.close();
    const admin = track(new SqliteAdmin(path));
    admin.replaceSnapshot({ mailboxes: [{ name: 'user.bad', acl: '', failure: 'x' }], quotas: [] });
    const again = track(new SqliteStore(path));
    expect(() => again.mailbox('user.bad')).toThrow(StoreError);
  });
});

describe('the replica\'s last sync time (smmapd_replica_last_sync_timestamp_seconds)', () => {
  it('is written with the snapshot that carries it, seen by a daemon connection opened before, and kept by other writes', async () => {
    const admin = provision();
    const s = track(new SqliteStore(path));
    expect(s.mailbox('user.nobody')).toBeNull(); // the daemon's connection is open before the table exists
    expect(s.lastSync()).toBeNull();
    await Promise.resolve(); // a lookup's read transaction lasts until its synchronous run is over
    admin.replaceSnapshot({ mailboxes: [{ name: 'user.fred', acl: '' }], quotas: [], synced: { at: 1700000000.25, server: 'imap.example.com' } });
    expect(s.lastSync()).toBe(1700000000.25);
    admin.replaceSnapshot({ mailboxes: [{ name: 'user.fred', acl: '' }], quotas: [] }); // import-cyrus: not a sync
    admin.createMailbox('user.bob', '');
    expect(s.lastSync()).toBe(1700000000.25);
    admin.replaceSnapshot({ mailboxes: [], quotas: [], synced: { at: 1700000100, server: 'imap.example.com' } });
    expect(s.lastSync()).toBe(1700000100);
    // not part of the versioned format: the file stays format 2
    expect(track(new Database(path)).pragma('user_version', { simple: true })).toBe(2);
  });
});

describe('admin side', () => {
  it('migrates an empty file and refuses a newer format', () => {
    writeFileSync(path, '');
    track(new SqliteAdmin(path)).createMailbox('user.a', '');
    const db = track(new Database(path));
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.pragma('user_version = 3');
    expect(() => new SqliteAdmin(path)).toThrow(/store format 3 is newer than this smmapd knows \(2\)/);
  });

  it('replaceSnapshot is all or nothing and keeps the deny list', () => {
    const admin = provision();
    expect(() =>
      admin.replaceSnapshot({ mailboxes: [{ name: 'user.x', acl: '' }, { name: 'user.x', acl: '' }], quotas: [] }),
    ).toThrow('user.x: named twice in the snapshot');
    expect(admin.listMailboxes()).toHaveLength(5);
    admin.replaceSnapshot({
      mailboxes: [{ name: 'user.y', acl: 'y\tlrs\t' }],
      quotas: [{ root: 'user.y', storageLimitKiB: 1, messageLimit: 2, storageUsed: 3, messageUsed: 4 }],
    });
    expect(admin.listMailboxes()).toEqual([{ name: 'user.y', acl: 'y\tlrs\t' }]);
    expect(admin.listQuotas()).toEqual([{ root: 'user.y', storageLimitKiB: 1, messageLimit: 2, storageUsed: 3, messageUsed: 4 }]);
    expect(admin.listDeny()).toEqual([{ userid: 'bad', services: 'imap,pop3', message: 'go away' }]);
  });

  it('create without an ACL gives the Cyrus default; a missing store with create: false is an error', () => {
    const admin = track(new SqliteAdmin(path));
    expect(admin.createMailbox('user.fred')).toBe('fred\tlrswipkxtecdan\t');
    expect(admin.createMailbox('shared')).toBe('anyone\tlrs\t');
    expect(() => admin.createMailbox('shared')).toThrow('shared: mailbox already exists');
    expect(() => new SqliteAdmin(join(dir, 'none.db'), { create: false })).toThrow(/does not exist/);
  });
});
