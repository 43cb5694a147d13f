// smmapctl, the built CLI run as a real process on temp stores: every command, both
// separators, virtual domains, errors and exit codes, batch atomicity and speed, `query`
// against behaviour §4, and a store that is missing, corrupt or locked.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, ctlBatch, ctlOk, haveCommand, isRoot, ROOT, runCtl, SMMAPCTL, tempConfig, waitFor } from '../helpers/base';
import { startSmmapd } from '../helpers/daemon';
import { describeWithPeer, firstMissing } from '../helpers/suite';
import { query } from '../helpers/socketmap';
import { SPEC_TABLE, SPEC_TABLE_BATCH } from '../fixtures/spec-table';

type Env = ReturnType<typeof tempConfig>;
const envs: Env[] = [];
function env(extra = ''): Env {
  const e = tempConfig(extra);
  envs.push(e);
  return e;
}

/** The store's rows, by internal name (what the daemon looks up). */
function rows(store: string, sql: string): unknown[] {
  const db = new Database(store, { readonly: true });
  try {
    return db.prepare(sql).raw().all();
  } finally {
    db.close();
  }
}

const ALL = 'lrswipkxtecdan';

beforeAll(() => buildOnce(), 120_000);
afterAll(() => {
  for (const e of envs) rmSync(e.dir, { recursive: true, force: true });
});

describe('init and the store file', () => {
  it('creates an empty store, idempotently', () => {
    const e = env();
    expect(ctlOk(e.conf, ['init'])).toEqual([]);
    expect(ctlOk(e.conf, ['init'])).toEqual([]);
    expect(ctlOk(e.conf, ['mailbox', 'list'])).toEqual([]);
    expect(rows(e.store, 'PRAGMA journal_mode')).toEqual([['wal']]);
    expect(rows(e.store, 'PRAGMA user_version')).toEqual([[2]]);
  });

  it('creates the store 0640, or less as the umask says, never more', () => {
    const e = env();
    ctlOk(e.conf, ['mailbox', 'create', 'user/fred']);
    expect(statSync(e.store).mode & 0o777).toBe(0o640);
    const f = env();
    const r = spawnSync('sh', ['-c', 'umask 077; exec "$0" "$@"', process.execPath, SMMAPCTL, '-C', f.conf, 'init'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(statSync(f.store).mode & 0o777).toBe(0o600);
  });

  it('never creates a store through a symbolic link at its path', () => {
    const e = env();
    const target = join(e.dir, 'elsewhere.db');
    symlinkSync(target, e.store);
    const r = runCtl(e.conf, ['mailbox', 'create', 'user/fred']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^smmapctl: cannot create store .*smmapd\.db: it is a symbolic link to a missing file\n$/);
    expect(existsSync(target)).toBe(false);
    expect(lstatSync(e.store).isSymbolicLink()).toBe(true);
  });

  it('creates the file but never its directory, and says so', () => {
    const e = env();
    writeFileSync(e.conf, `configdirectory: ${e.dir}\nsmmapd_store: ${e.dir}/no/such/dir/s.db\n`);
    const r = runCtl(e.conf, ['mailbox', 'create', 'user/fred']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`smmapctl: cannot create store ${e.dir}/no/such/dir/s.db: directory ${e.dir}/no/such/dir does not exist\n`);
  });

  it('listing a store that does not exist is an error, and creates nothing', () => {
    const e = env();
    const r = runCtl(e.conf, ['mailbox', 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^smmapctl: store .*smmapd\.db does not exist \(smmapctl init creates it\)\n$/);
  });

  it('refuses a newer store format and a foreign SQLite file', () => {
    const e = env();
    ctlOk(e.conf, ['init']);
    const db = new Database(e.store);
    db.pragma('user_version = 99');
    db.close();
    const r = runCtl(e.conf, ['mailbox', 'create', 'user/fred']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('store format 99 is newer than this smmapd knows (2)');

    const f = env();
    const other = new Database(f.store);
    other.exec('CREATE TABLE t (x)');
    other.close();
    expect(runCtl(f.conf, ['init']).stderr).toContain('not an smmapd store');
  });
});

describe('mailboxes, "." separator', () => {
  let e: Env;
  beforeAll(() => {
    e = env('unixhierarchysep: no');
  });

  it('creates, lists (sorted, with patterns) and deletes', () => {
    for (const m of ['user.fred', 'user.fred-x', 'user.fred.sub', 'user.fred.sub.deep', 'shared.pub', 'user.ann', 'shared']) {
      expect(ctlOk(e.conf, ['mailbox', 'create', m])).toEqual([]);
    }
    // the separator sorts before every other character: a user's folders follow the INBOX
    const all = ['shared', 'shared.pub', 'user.ann', 'user.fred', 'user.fred.sub', 'user.fred.sub.deep', 'user.fred-x'];
    expect(ctlOk(e.conf, ['mailbox', 'list'])).toEqual(all);
    expect(ctlOk(e.conf, ['mailbox', 'list', '*'])).toEqual(all);
    expect(ctlOk(e.conf, ['mailbox', 'list', 'user.%'])).toEqual(['user.ann', 'user.fred', 'user.fred-x']);
    expect(ctlOk(e.conf, ['mailbox', 'list', 'user.fred*'])).toEqual(['user.fred', 'user.fred.sub', 'user.fred.sub.deep', 'user.fred-x']);
    expect(ctlOk(e.conf, ['mailbox', 'list', 'user.%.%'])).toEqual(['user.fred.sub']);
    expect(ctlOk(e.conf, ['mailbox', 'list', '%'])).toEqual(['shared']);
    expect(ctlOk(e.conf, ['mailbox', 'list', 'nothing*'])).toEqual([]);
    expect(ctlOk(e.conf, ['mailbox', 'delete', 'user.fred.sub'])).toEqual([]);
    expect(ctlOk(e.conf, ['mailbox', 'list', 'user.fred*'])).toEqual(['user.fred', 'user.fred.sub.deep', 'user.fred-x']);
  });

  it('never creates parents', () => {
    ctlOk(e.conf, ['mailbox', 'create', 'user.orphan.a.b']);
    expect(ctlOk(e.conf, ['mailbox', 'list', 'user.orphan*'])).toEqual(['user.orphan.a.b']);
  });

  it('creating an existing mailbox or deleting a missing one is an error (exit 1)', () => {
    let r = runCtl(e.conf, ['mailbox', 'create', 'user.ann']);
    expect([r.code, r.stderr]).toEqual([1, 'smmapctl: user.ann: mailbox already exists\n']);
    r = runCtl(e.conf, ['mailbox', 'delete', 'user.nobody']);
    expect([r.code, r.stderr]).toEqual([1, 'smmapctl: user.nobody: mailbox does not exist\n']);
  });

  it('bad names are usage errors (exit 64)', () => {
    for (const bad of ['user', 'user..x', 'a&b', '@example.com']) {
      const r = runCtl(e.conf, ['mailbox', 'create', bad]);
      expect(r.code, bad).toBe(64);
      expect(r.stderr, bad).toMatch(/^smmapctl: .+\n$/);
    }
  });

  it("deleting a user's INBOX deletes the whole user, its folders and quota roots", () => {
    ctlBatch(e.conf, ['mailbox create user.gone', 'mailbox create user.gone.a', 'mailbox create user.gone.a.b',
      'mailbox create user.gonezo', 'quota set user.gone --storage 5', 'quota set user.gone.a --message 5', 'quota set user.gonezo --message 1']);
    ctlOk(e.conf, ['mailbox', 'delete', 'user.gone']);
    expect(ctlOk(e.conf, ['mailbox', 'list', 'user.gone*'])).toEqual(['user.gonezo']);
    expect(ctlOk(e.conf, ['quota', 'list']).slice(1).map((l) => l.split(' ').pop())).toEqual(['user.gonezo', 'user.gonezo']);
  });

  it('stores Cyrus internal names: a dot inside a component is ^', () => {
    // with the "." separator an admin writes a dot in a name as ^ (netnews convention)
    ctlOk(e.conf, ['mailbox', 'create', 'user.fred^smith']);
    expect(rows(e.store, "SELECT name FROM mailboxes WHERE name LIKE 'user.fred^%'")).toEqual([['user.fred^smith']]);
    expect(ctlOk(e.conf, ['mailbox', 'list', 'user.fred^*'])).toEqual(['user.fred^smith']);
  });
});

describe('mailboxes, "/" separator and virtual domains', () => {
  let e: Env;
  beforeAll(() => {
    e = env('unixhierarchysep: yes\nvirtdomains: userid\ndefaultdomain: example.org');
    ctlBatch(e.conf, [
      'mailbox create user/fred',
      'mailbox create user/fred.smith',
      'mailbox create user/fred.smith/a.b',
      'mailbox create user/fred@example.com',
      'mailbox create user/fred/Sent@example.com',
      'mailbox create user/joe@example.org', // the default domain: no domain stored
      "mailbox create 'user/fred/caf&AOk-'",
      'mailbox create shared/pub@example.com',
    ]);
  });

  it('converts to internal names', () => {
    expect(rows(e.store, 'SELECT name FROM mailboxes ORDER BY name').flat()).toEqual([
      'example.com!shared.pub',
      'example.com!user.fred',
      'example.com!user.fred.Sent',
      'user.fred',
      'user.fred.caf&AOk-',
      'user.fred^smith',
      'user.fred^smith.a^b',
      'user.joe',
    ]);
  });

  it('lists external names, default domain first, % stopping at / and @', () => {
    expect(ctlOk(e.conf, ['mailbox', 'list'])).toEqual([
      'user/fred', 'user/fred/caf&AOk-', 'user/fred.smith', 'user/fred.smith/a.b', 'user/joe',
      'shared/pub@example.com', 'user/fred@example.com', 'user/fred/Sent@example.com',
    ]);
    expect(ctlOk(e.conf, ['mailbox', 'list', 'user/%'])).toEqual(['user/fred', 'user/fred.smith', 'user/joe']);
    expect(ctlOk(e.conf, ['mailbox', 'list', '*@example.com'])).toEqual(['shared/pub@example.com', 'user/fred@example.com', 'user/fred/Sent@example.com']);
    expect(ctlOk(e.conf, ['mailbox', 'list', 'user/%@example.com'])).toEqual(['user/fred@example.com']);
  });

  it('domain quota roots are written @domain', () => {
    ctlOk(e.conf, ['quota', 'set', '@example.com', '--storage', '100']);
    expect(rows(e.store, 'SELECT root, storage_limit_kib FROM quota_roots')).toEqual([['example.com!', 100]]);
    expect(ctlOk(e.conf, ['quota', 'list'])).toContain('     100        0        0              STORAGE @example.com');
    // with virtdomains off a domain is a usage error
    const off = env('virtdomains: off');
    expect(runCtl(off.conf, ['quota', 'set', '@example.com', '--storage', '1']).code).toBe(64);
  });
});

describe('ACLs', () => {
  let e: Env;
  beforeAll(() => {
    e = env('unixhierarchysep: no');
    ctlBatch(e.conf, ['mailbox create user.fred', 'mailbox create user.fred.sub', 'mailbox create shared',
      'mailbox create shared.pub', 'mailbox create top']);
  });

  it('gives new mailboxes the ACL Cyrus gives them (behaviour §2)', () => {
    expect(ctlOk(e.conf, ['acl', 'list', 'user.fred'])).toEqual([`fred ${ALL}`]);
    expect(ctlOk(e.conf, ['acl', 'list', 'top'])).toEqual(['anyone lrs']);
    // a folder copies its nearest existing ancestor's ACL
    ctlOk(e.conf, ['acl', 'set', 'user.fred', 'joe', 'lr']);
    ctlOk(e.conf, ['mailbox', 'create', 'user.fred.sub.x.y']);
    expect(ctlOk(e.conf, ['acl', 'list', 'user.fred.sub.x.y'])).toEqual(ctlOk(e.conf, ['acl', 'list', 'user.fred.sub']));
    ctlOk(e.conf, ['mailbox', 'create', 'user.fred.new']);
    expect(ctlOk(e.conf, ['acl', 'list', 'user.fred.new'])).toEqual([`fred ${ALL}`, 'joe lr']);
  });

  it('sets, changes and deletes entries, negative ones included', () => {
    ctlOk(e.conf, ['acl', 'set', 'shared.pub', 'anyone', 'lrsp']);
    ctlOk(e.conf, ['acl', 'set', 'shared.pub', '--', '-anyone', 'p']);
    expect(ctlOk(e.conf, ['acl', 'list', 'shared.pub'])).toEqual(['anyone lrsp', '-anyone p']);
    ctlOk(e.conf, ['acl', 'delete', 'shared.pub', '--', '-anyone']);
    ctlOk(e.conf, ['acl', 'delete', 'shared.pub', 'nobody']); // absent: fine
    expect(ctlOk(e.conf, ['acl', 'list', 'shared.pub'])).toEqual(['anyone lrsp']);
  });

  it('errors: missing mailbox (1), bad rights and missing arguments (64)', () => {
    let r = runCtl(e.conf, ['acl', 'list', 'shared.nosuch']);
    expect([r.code, r.stderr]).toEqual([1, 'smmapctl: shared.nosuch: mailbox does not exist\n']);
    r = runCtl(e.conf, ['acl', 'set', 'shared.pub', 'anyone', 'lrz!']);
    expect(r.code).toBe(64);
    r = runCtl(e.conf, ['acl', 'set', 'shared.pub', 'anyone']);
    expect([r.code, r.stderr]).toEqual([64, "smmapctl: missing required argument 'RIGHTS'\n"]);
    // without --, -anyone is taken for an option
    r = runCtl(e.conf, ['acl', 'set', 'shared.pub', '-anyone', 'p']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/^smmapctl: unknown option '-anyone'\n$/);
  });
});

describe('quota', () => {
  let e: Env;
  beforeAll(() => {
    e = env('unixhierarchysep: no');
  });

  it('sets limits, records usage, lists like Cyrus quota(8) with exact bytes, deletes', () => {
    ctlOk(e.conf, ['quota', 'set', 'user.fred', '--storage', '100', '--message', '50']);
    ctlOk(e.conf, ['quota', 'usage', 'user.fred', '--storage', '51300', '--message', '7']);
    ctlOk(e.conf, ['quota', 'set', 'user.fred', '--message', 'none']); // storage kept
    ctlOk(e.conf, ['quota', 'set', 'shared', '--storage', '0']);
    ctlOk(e.conf, ['quota', 'set', 'user.nolimits']);
    expect(ctlOk(e.conf, ['quota', 'list'])).toEqual([
      '   Quota   % Used     Used             Resource Root',
      '       0                 0              STORAGE shared',
      '                         0              MESSAGE shared',
      '     100       50    51300              STORAGE user.fred',
      '                         7              MESSAGE user.fred',
      '                         0              STORAGE user.nolimits',
      '                         0              MESSAGE user.nolimits',
    ]);
    expect(rows(e.store, "SELECT * FROM quota_roots WHERE root = 'user.fred'")).toEqual([['user.fred', 100, null, 51300, 7]]);
    ctlOk(e.conf, ['quota', 'delete', 'user.nolimits']);
    ctlOk(e.conf, ['quota', 'delete', 'user.never']); // absent: fine (Cyrus)
    expect(ctlOk(e.conf, ['quota', 'list'])).toHaveLength(5);
  });

  it('errors: bad numbers (64), usage of a root that does not exist (1)', () => {
    for (const args of [['--storage', '-1'], ['--storage', '1.5'], ['--message', 'lots'], ['--storage', '99999999999999999999']]) {
      const r = runCtl(e.conf, ['quota', 'set', 'user.fred', ...args]);
      expect(r.code, args.join(' ')).toBe(64);
    }
    let r = runCtl(e.conf, ['quota', 'usage', 'user.none', '--storage', '5']);
    expect([r.code, r.stderr]).toEqual([1, 'smmapctl: user.none: no such quota root\n']);
    r = runCtl(e.conf, ['quota', 'usage', 'user.fred']);
    expect(r.code).toBe(64);
  });
});

describe('deny list', () => {
  it('adds, replaces, removes and lists like cyr_deny -l', () => {
    const e = env('virtdomains: userid\ndefaultdomain: example.org');
    ctlOk(e.conf, ['deny', 'add', 'fred']);
    ctlOk(e.conf, ['deny', 'add', 'Joe@Example.ORG', '--services', 'imap,pop3', '--message', 'Go away']); // stored as the daemon looks it up
    ctlOk(e.conf, ['deny', 'add', 'ann@example.com', '--services', '!smmapd,*']);
    ctlOk(e.conf, ['deny', 'add', 'fred', '--message', 'Replaced']);
    expect(ctlOk(e.conf, ['deny', 'list'])).toEqual([
      'Username                       Service(s)           Message',
      'ann@example.com                !smmapd,*            Access to this service has been blocked',
      'fred                           *                    Replaced',
      'joe                            imap,pop3            Go away',
    ]);
    ctlOk(e.conf, ['deny', 'remove', 'joe']);
    ctlOk(e.conf, ['deny', 'remove', 'nobody']); // absent: fine
    expect(ctlOk(e.conf, ['deny', 'list'])).toHaveLength(3);
    expect(runCtl(e.conf, ['deny', 'add', 'fred+x']).code).toBe(64);
  });

  it('is what the daemon checks first', () => {
    const e = env('unixhierarchysep: no');
    ctlBatch(e.conf, ['mailbox create user.fred', 'mailbox create user.ann', 'deny add fred --message "No\tmail"',
      'deny add ann --services "imap,!smmapd"']);
    expect(ctlOk(e.conf, ['query', 'fred', 'fred+x', 'ann'])).toEqual(['NOTFOUND No mail', 'NOTFOUND No mail', 'OK ann']);
  });
});

describe('command line', () => {
  const e = (): Env => env();

  it('--help everywhere, exit 0', () => {
    const c = e().conf;
    for (const args of [['--help'], ['mailbox', '--help'], ['mailbox', 'create', '--help'], ['acl', 'set', '--help'],
      ['quota', 'list', '--help'], ['deny', 'add', '--help'], ['query', '--help'], ['batch', '--help'], ['init', '--help']]) {
      const r = runCtl(c, args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/^Usage: smmapctl/);
    }
  });

  it('usage errors: one line on stderr, exit 64', () => {
    const c = e().conf;
    for (const [args, msg] of [
      [['frobnicate'], "smmapctl: unknown command 'frobnicate'\n"],
      [['mailbox', 'create'], "smmapctl: missing required argument 'NAME'\n"],
      [['mailbox', 'create', 'a', 'b'], 'smmapctl: too many arguments for \'create\'. Expected 1 argument but got 2.\n'],
      [['quota', 'set', 'x', '--bogus'], "smmapctl: unknown option '--bogus'\n"],
    ] as const) {
      const r = runCtl(c, args);
      expect([r.code, r.stderr], args.join(' ')).toEqual([64, msg]);
    }
    // a group without its command shows the help, as an error
    expect(runCtl(c, ['mailbox']).code).toBe(64);
    expect(runCtl(c, []).code).toBe(64);
  });

  it('--version (-V): the package version, exit 0', () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) expect(runCtl(null, [flag])).toEqual({ code: 0, stdout: `smmapctl ${version}\n`, stderr: '' });
  });

  it('batch with a file it cannot read: a usage error, exit 64 (smmapctl(8))', () => {
    const c = e().conf;
    const r = runCtl(c, ['batch', '/nonexistent/provision.txt']);
    expect([r.code, r.stdout]).toEqual([64, '']);
    expect(r.stderr).toMatch(/^smmapctl: cannot read \/nonexistent\/provision\.txt: ENOENT/);
  });

  it('a configuration file that cannot be read: exit 1', () => {
    const r = runCtl('/nonexistent/smmapd.conf', ['mailbox', 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^smmapctl: cannot read configuration \/nonexistent\/smmapd\.conf: .*\n$/);
  });
});

describe('batch', () => {
  it('runs commands from a file or stdin, with shell quoting and comments', () => {
    const e = env('unixhierarchysep: no');
    const file = join(e.dir, 'provision.txt');
    writeFileSync(file, [
      '# provisioning',
      '',
      'mailbox create user.fred',
      'mailbox create "user.fred.My Folder"   # trailing comment',
      "mailbox create 'user.fred.it''s'",
      'mailbox create user.fred.back\\ slash',
      'mailbox create shared.pub',
      'acl set shared.pub -- -anyone p',
      'acl set shared.pub anyone lrsp',
      'quota set user.fred --storage=100 --message 5',
      'deny add bob --message "it\'s \\"over\\""',
      'mailbox list user.fred*',
    ].join('\n'));
    // byte order within a level, as Cyrus lists: 'M' before 'b'
    expect(ctlOk(e.conf, ['batch', file])).toEqual(['user.fred', 'user.fred.My Folder', 'user.fred.back slash', 'user.fred.its']);
    expect(ctlOk(e.conf, ['acl', 'list', 'shared.pub'])).toEqual(['anyone lrsp', '-anyone p']);
    expect(ctlOk(e.conf, ['deny', 'list'])[1]).toBe(`${'bob'.padEnd(30)} ${'*'.padEnd(20)} it's "over"`);
    expect(ctlOk(e.conf, ['batch'], 'mailbox create user.joe\nmailbox list user.j*\n')).toEqual(['user.joe']);
  });

  it('is all or nothing: a bad line 3 leaves nothing written and is named', () => {
    const e = env('unixhierarchysep: no');
    ctlOk(e.conf, ['init']);
    let r = runCtl(e.conf, ['batch'], 'mailbox create user.a\nquota set user.a --storage 5\nmailbox create user.a\nmailbox create user.b\n');
    expect([r.code, r.stdout, r.stderr]).toEqual([1, '', 'smmapctl: batch:3: user.a: mailbox already exists\n']);
    expect(ctlOk(e.conf, ['mailbox', 'list'])).toEqual([]);
    expect(ctlOk(e.conf, ['quota', 'list'])).toHaveLength(1);
    // parse errors are usage errors, and also write nothing
    for (const [line3, msg] of [
      ['acl set user.a fred', 'batch:3: acl set: missing RIGHTS'],
      ['mailbox create "user.unterminated', 'batch:3: unterminated double quote'],
      ['query fred', 'batch:3: unknown command "query fred" (batch takes the mailbox, acl, quota and deny commands)'],
      ['quota set user.a --storage lots', 'batch:3: --storage: want a whole number, not "lots"'],
      ['mailbox create user', 'batch:3: user: "user" alone is not a mailbox'],
    ]) {
      r = runCtl(e.conf, ['batch'], `mailbox create user.a\ndeny add fred\n${line3}\n`);
      expect([r.code, r.stderr], line3).toEqual([64, `smmapctl: ${msg}\n`]);
    }
    expect(ctlOk(e.conf, ['mailbox', 'list'])).toEqual([]);
    expect(ctlOk(e.conf, ['deny', 'list'])).toHaveLength(1);
    expect(rows(e.store, 'SELECT count(*) FROM mailboxes')).toEqual([[0]]);
  });

  it('provisions 100,000 mailboxes in seconds', () => {
    const e = env('unixhierarchysep: no');
    const lines: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      lines.push(`mailbox create user.u${i}`);
      if (i % 10 === 0) lines.push(`quota set user.u${i} --storage 102400 --message 10000`, `quota usage user.u${i} --storage ${i * 7} --message 3`);
      if (i % 100 === 0) lines.push(`mailbox create user.u${i}.Sent`, `acl set user.u${i}.Sent helper lrs`);
    }
    const start = process.hrtime.bigint();
    ctlBatch(e.conf, lines);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    console.log(`batch: ${lines.length} lines (100,000 mailbox creates + quota/acl) in ${seconds.toFixed(2)} s`);
    expect(rows(e.store, 'SELECT count(*) FROM mailboxes')).toEqual([[101_000]]);
    expect(rows(e.store, 'SELECT count(*) FROM quota_roots')).toEqual([[10_000]]);
    expect(seconds).toBeLessThan(30);
    expect(ctlOk(e.conf, ['query', 'u99999', 'u100+Sent', 'u100000'])).toEqual(['OK u99999', 'OK u100+Sent', 'NOTFOUND Mailbox does not exist']);
  }, 120_000);
});

describe('query', () => {
  let e: Env;
  beforeAll(() => {
    e = env('unixhierarchysep: no\nvirtdomains: off');
    ctlBatch(e.conf, [...SPEC_TABLE_BATCH]);
  });

  it('gives the behaviour §4 table', () => {
    expect(ctlOk(e.conf, ['query', '--', ...SPEC_TABLE.map(([k]) => k)])).toEqual(SPEC_TABLE.map(([, r]) => r));
  });

  it('-p drops the detail; lmtp_over_quota_perm_failure turns TEMP into PERM', () => {
    expect(ctlOk(e.conf, ['query', '-p', 'fred+nosuch', 'fred+Sub'])).toEqual(['OK fred+nosuch', 'OK fred+Sub']);
    const perm = join(e.dir, 'perm.conf');
    writeFileSync(perm, `configdirectory: ${e.dir}\nsmmapd_store: ${e.store}\nunixhierarchysep: no\nlmtp_over_quota_perm_failure: yes\n`);
    expect(ctlOk(perm, ['query', 'full', 'fred'])).toEqual(['PERM Over quota', 'OK fred']);
  });

  it('sees a quota exactly at its limit as fine, one byte over as over', () => {
    ctlBatch(e.conf, ['mailbox create user.edge', 'quota set user.edge --storage 2 --message 3', 'quota usage user.edge --storage 2048 --message 2']);
    expect(ctlOk(e.conf, ['query', 'edge'])).toEqual(['OK edge']);
    ctlOk(e.conf, ['quota', 'usage', 'user.edge', '--storage', '2049']);
    expect(ctlOk(e.conf, ['query', 'edge'])).toEqual(['TEMP Over quota']);
  });
});

describe('a store that cannot be read gives TEMP, never a crash', () => {
  it('missing file', () => {
    const e = env();
    const r = runCtl(e.conf, ['query', 'fred', 'joe']);
    expect(r.code).toBe(0);
    // The reply as the daemon sends it (a few words, no path); the reason on stderr, once.
    expect(r.stdout).toBe('TEMP store unavailable\n'.repeat(2));
    expect(r.stderr).toBe(`smmapctl: store unavailable: ${e.store}: unable to open database file\n`);
  });

  it('missing directory', () => {
    const e = env();
    writeFileSync(e.conf, `smmapd_store: ${e.dir}/nodir/s.db\n`);
    const r = runCtl(e.conf, ['query', 'fred']);
    expect(r.stdout).toBe('TEMP store unavailable\n');
    expect(r.stderr).toBe(`smmapctl: store unavailable: ${e.dir}/nodir/s.db: Cannot open database because the directory does not exist\n`);
  });

  it('corrupt or foreign file', () => {
    const e = env();
    writeFileSync(e.store, 'this is not a database, just text '.repeat(200));
    expect(runCtl(e.conf, ['query', 'fred'])).toMatchObject({ stdout: 'TEMP store unavailable\n', stderr: `smmapctl: store unavailable: ${e.store}: file is not a database\n` });
    const f = env();
    ctlOk(f.conf, ['mailbox', 'create', 'user/fred']);
    const db = new Database(f.store);
    db.pragma('user_version = 7');
    db.close();
    const r = runCtl(f.conf, ['query', 'fred']);
    expect(r.stdout).toBe('TEMP store unavailable\n');
    expect(r.stderr).toMatch(/^smmapctl: store unavailable: .*store format 7 is newer than this smmapd knows \(2\): upgrade smmapd\n$/);
  });

  it('empty store file (created but never initialised)', () => {
    const e = env();
    writeFileSync(e.store, '');
    expect(runCtl(e.conf, ['query', 'fred'])).toMatchObject({
      stdout: 'TEMP store unavailable\n',
      stderr: `smmapctl: store unavailable: ${e.store}: empty store (smmapctl init creates its tables)\n`,
    });
  });

  it('locked by another process past the busy timeout, then free again', async () => {
    const e = env('smmapd_store_busy_timeout: 200');
    ctlOk(e.conf, ['mailbox', 'create', 'user/fred']);
    // Another process takes the database for itself (exclusive locking mode and an open
    // write transaction): even a WAL reader must wait for it.
    const holder: ChildProcess = spawn(process.execPath, ['-e', `
      const Database = require(${JSON.stringify(join(ROOT, 'node_modules/better-sqlite3'))});
      const db = new Database(process.argv[1]);
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
      db.prepare("INSERT INTO deny (userid) VALUES ('locker')").run();
      process.stdout.write('locked\\n');
      process.stdin.resume();
      process.stdin.on('end', () => { db.exec('ROLLBACK'); db.close(); process.exit(0); });
    `, e.store], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((res, rej) => {
        holder.stdout!.once('data', () => res());
        holder.once('exit', (c) => rej(new Error(`lock holder exited ${c}`)));
      });
      const start = Date.now();
      const r = runCtl(e.conf, ['query', 'fred']);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('TEMP store locked\n');
      expect(r.stderr).toBe(`smmapctl: store locked: ${e.store}: database is locked (waited 200 ms)\n`);
      expect(Date.now() - start).toBeGreaterThanOrEqual(200);
    } finally {
      holder.stdin!.end();
      await new Promise((res) => holder.once('exit', res));
    }
    expect(ctlOk(e.conf, ['query', 'fred'])).toEqual(['OK fred']);
  });

  it('smmapctl itself reports a store it cannot write: exit 1', () => {
    const e = env();
    mkdirSync(e.store); // a directory where the file should be
    const r = runCtl(e.conf, ['mailbox', 'create', 'user/fred']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^smmapctl: cannot open store .*smmapd\.db: unable to open database file\n$/);
  });
});

// Root provisions, the daemon reads as smmapd_user: what smmapctl creates or writes must stay
// readable by that user, and what that user cannot open must be said in its terms.
describeWithPeer('run as root for a daemon that runs as smmapd_user', firstMissing([[isRoot(), 'root'], [haveCommand('setpriv'), 'setpriv']]), () => {
  const USER = 'nobody';
  const who = (): string => spawnSync('id', ['-gn', USER], { encoding: 'utf8' }).stdout.trim();
  const owner = (p: string): string => {
    const st = lstatSync(p);
    return `${st.uid}:${st.gid} ${(st.mode & 0o777).toString(8)}`;
  };
  const uid = (): number => Number(spawnSync('id', ['-u', USER], { encoding: 'utf8' }).stdout.trim());
  const gid = (): number => Number(spawnSync('id', ['-g', USER], { encoding: 'utf8' }).stdout.trim());
  /** A temp config whose directory others may enter, the store in `sub` below it. */
  function open(sub = 'lib', extra = ''): Env & { lib: string } {
    const e = env();
    chmodSync(e.dir, 0o755);
    const lib = join(e.dir, sub);
    writeFileSync(e.conf, `configdirectory: ${lib}\nsmmapd_user: ${USER}\n${extra}\n`);
    return { ...e, store: join(lib, 'smmapd.db'), lib };
  }
  const asUser = (conf: string, args: readonly string[]): ReturnType<typeof spawnSync> =>
    spawnSync('setpriv', [`--reuid=${USER}`, `--regid=${who()}`, '--clear-groups', process.execPath, SMMAPCTL, '-C', conf, ...args], { encoding: 'utf8' });

  it('init creates configdirectory 0750 and the store 0640, both the user\'s; its parent must exist', () => {
    const e = open();
    expect(existsSync(e.lib)).toBe(false);
    expect(ctlOk(e.conf, ['init'])).toEqual([]);
    expect(owner(e.lib)).toBe(`${uid()}:${gid()} 750`);
    expect(owner(e.store)).toBe(`${uid()}:${gid()} 640`);
    expect(asUser(e.conf, ['query', 'fred']).stdout).toBe('NOTFOUND Mailbox does not exist\n');
    expect(ctlOk(e.conf, ['init'])).toEqual([]); // again: nothing changes
    const f = open('no/such/lib');
    const r = runCtl(f.conf, ['init']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^smmapctl: cannot create directory .*\/no\/such\/lib: ENOENT/);
  });

  it('a link at configdirectory\'s place is neither followed to create a directory nor given away', () => {
    const e = open();
    const target = join(e.dir, 'elsewhere');
    symlinkSync(target, e.lib);
    expect(runCtl(e.conf, ['init']).code).toBe(1);
    expect(existsSync(target)).toBe(false);
    mkdirSync(target, 0o700);
    ctlOk(e.conf, ['init']); // an existing directory through a link: used, never chowned
    expect(owner(target)).toBe('0:0 700');
  });

  it('every write gives the store and its -wal and -shm back to the user, whoever made them', () => {
    const e = open();
    mkdirSync(e.lib, 0o750);
    chownSync(e.lib, uid(), gid());
    // a store made by root without smmapd_user (as the README once said to): root's own
    writeFileSync(`${e.dir}/plain.conf`, `configdirectory: ${e.lib}\n`);
    ctlOk(`${e.dir}/plain.conf`, ['mailbox', 'create', 'user/fred']);
    chownSync(e.store, 0, 0);
    expect(asUser(e.conf, ['query', 'fred']).stdout).toBe('TEMP store unavailable\n');
    // a reader keeps the -wal and -shm files in place, as a running daemon does
    const reader = new Database(e.store, { readonly: true });
    try {
      reader.prepare('SELECT count(*) FROM mailboxes').get();
      ctlOk(e.conf, ['mailbox', 'create', 'user/joe']);
      for (const f of [e.store, `${e.store}-wal`, `${e.store}-shm`]) expect(owner(f), f).toBe(`${uid()}:${gid()} 640`);
      chownSync(`${e.store}-shm`, 0, 0);
      ctlOk(e.conf, ['mailbox', 'list']);
      expect(owner(`${e.store}-shm`)).toBe(`${uid()}:${gid()} 640`);
    } finally {
      reader.close();
    }
    expect(asUser(e.conf, ['query', 'fred', 'joe']).stdout).toBe('OK fred\nOK joe\n');
  });

  it('an unknown smmapd_user is an error, before anything is written', () => {
    const e = open('lib', '');
    writeFileSync(e.conf, `configdirectory: ${e.lib}\nsmmapd_user: no-such-user-here\n`);
    mkdirSync(e.lib);
    const r = runCtl(e.conf, ['mailbox', 'create', 'user/fred']);
    expect([r.code, r.stderr]).toEqual([1, 'smmapctl: smmapd_user no-such-user-here: no such user: no-such-user-here (the store is written for that user)\n']);
    expect(existsSync(e.store)).toBe(false);
  });

  it('a store the daemon cannot open is logged as what it is: owner, mode, and the user it runs as', async () => {
    const e = open();
    ctlOk(e.conf, ['init']);
    ctlOk(e.conf, ['mailbox', 'create', 'user/fred']);
    const me = `${USER}:${who()} (uid ${uid()}, gid ${gid()})`;
    // the file: root's, 0640
    chownSync(e.store, 0, 0);
    const d = await startSmmapd({ conf: e.conf });
    try {
      expect(await query(d.target, ['fred'])).toEqual(['TEMP store unavailable']);
      expect(await waitFor(() => d.output().includes('cannot read it'), 10_000)).toBe(true);
      expect(d.output()).toContain(`store unavailable: ${e.store}: unable to open database file (the store is root:root, mode 0640: ${me} cannot read it)`);
    } finally {
      await d.stop();
    }
    // the directory: root's, 0700
    chownSync(e.store, uid(), gid());
    chownSync(e.lib, 0, 0);
    chmodSync(e.lib, 0o700);
    const r = asUser(e.conf, ['query', 'fred']);
    expect(r.stdout).toBe('TEMP store unavailable\n');
    expect(r.stderr).toContain(`(directory ${e.lib} is root:root, mode 0700: ${me} cannot enter it)`);
  });
});
