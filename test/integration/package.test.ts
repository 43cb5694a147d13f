// The Debian package (scripts/deb/build.sh, `npm run package`) as an admin meets it: built
// from this tree, judged by lintian, installed with dpkg, serving through the installed
// /etc/smmapd.conf as user smmapd (the listener started by root, and the stdio model started
// as smmapd), provisioned by root's smmapctl, then purged without a trace. Needs root, and
// installs and purges a package on this machine: skipped when the package is installed
// already (an admin's copy is never touched).
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildOnce, freePort, haveCommand, isRoot, ROOT, runAsync, sleep, waitForPort, type CtlResult } from '../helpers/base';
import { describeWithPeer, firstMissing } from '../helpers/suite';
import { query } from '../helpers/socketmap';

const installedAlready = (): boolean => spawnSync('dpkg', ['-s', 'smmapd'], { encoding: 'utf8' }).stdout.includes('Status: install ok installed');
const missing = firstMissing([
  [isRoot(), 'root (it installs a package)'],
  [haveCommand('dpkg-deb') && haveCommand('dpkg-shlibdeps'), 'dpkg-deb and dpkg-shlibdeps (dpkg-dev)'],
  [haveCommand('lintian'), 'lintian'],
  [!installedAlready(), 'a machine without an smmapd package installed'],
]);

const VERSION = (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { version: string }).version;
let deb = '';
let installed = false;

function run(cmd: string, args: readonly string[], input?: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: input ?? '', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return r;
}

function ok(cmd: string, args: readonly string[], input?: string): string {
  const r = run(cmd, args, input);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** run() without blocking the test worker (building and lintian take a minute). */
const runDeb = (cmd: string, args: readonly string[]): Promise<CtlResult> => runAsync(cmd, args, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });

const owner = (p: string): string => ok('stat', ['-c', '%U:%G %a', p]).trim();

function purge(): void {
  if (installed) run('dpkg', ['--purge', '--force-all', 'smmapd']);
  installed = false;
}

describeWithPeer('the Debian package: build, install, serve as smmapd, purge', missing, () => {
  beforeAll(() => buildOnce(), 300_000);
  afterAll(() => purge(), 120_000);

  it('builds with dpkg-deb; its path is the last line printed; lintian finds no error', async () => {
    // build.sh is the second half of `npm run package` (the first, npm run build, is buildOnce)
    const b = await runDeb('bash', [`${ROOT}/scripts/deb/build.sh`]);
    expect(b.code, b.stdout + b.stderr).toBe(0);
    const out = b.stdout.trimEnd().split('\n');
    deb = out[out.length - 1]!;
    expect(deb).toBe(`${ROOT}/build/smmapd_${VERSION}-1_amd64.deb`);
    const info = ok('dpkg-deb', ['-f', deb, 'Package', 'Version', 'Architecture', 'Depends']);
    expect(info).toContain(`Version: ${VERSION}-1`);
    expect(info).toContain('Architecture: amd64');
    expect(info).toMatch(/Depends: nodejs \(>= 20\), nodejs \(<< 21\), adduser, libc6/);
    expect(ok('dpkg-deb', ['-I', deb, 'conffiles'])).toBe('/etc/smmapd.conf\n');
    const names = ok('dpkg-deb', ['-c', deb]).split('\n').map((l) => l.split(/\s+/)[5] ?? '');
    for (const f of ['./usr/bin/smmapd', './usr/bin/smmapctl', './usr/share/man/man8/smmapd.8.gz', './usr/share/man/man8/smmapctl.8.gz',
      './lib/systemd/system/smmapd.service', './lib/systemd/system/smmapd.socket', './usr/share/doc/smmapd/copyright',
      './usr/share/doc/smmapd/changelog.Debian.gz', './usr/lib/smmapd/node_modules/better-sqlite3/build/Release/better_sqlite3.node']) {
      expect(names, f).toContain(f);
    }
    // only what runs: not better-sqlite3's C sources and objects, nor type declarations,
    // docs or licence files (their texts are in copyright)
    expect(names.filter((n) => /\/better-sqlite3\/(src|deps|build\/Release\/obj)|\.(ts|md|map|a|o)$|\/LICEN[CS]E[^/]*$/i.test(n) && n.includes('node_modules'))).toEqual([]);
    const lint = await runDeb('sh', ['-c', 'lintian --tag-display-limit 0 "$0" 2>&1', deb]);
    expect(lint.stdout.split('\n').filter((l) => l.startsWith('E: '))).toEqual([]);
  }, 600_000);

  it('installs with dpkg -i: the user, /var/lib/smmapd 0750, a store smmapd reads, programs, man pages, units', async () => {
    expect(deb).not.toBe('');
    installed = true;
    const i = await runDeb('dpkg', ['-i', deb]);
    expect(i.code, i.stdout + i.stderr).toBe(0);
    expect(ok('getent', ['passwd', 'smmapd'])).toMatch(/^smmapd:x:\d+:\d+:smmapd socketmap daemon[^:]*:\/var\/lib\/smmapd:\/usr\/sbin\/nologin\n$/);
    expect(owner('/var/lib/smmapd')).toBe('smmapd:smmapd 750');
    expect(owner('/var/lib/smmapd/smmapd.db')).toBe('smmapd:smmapd 640');
    expect(readFileSync('/etc/smmapd.conf', 'utf8')).toMatch(/^smmapd_user: smmapd$/m);
    expect(ok('smmapd', ['--version'])).toBe(`smmapd ${VERSION}\n`);
    expect(ok('smmapctl', ['--version'])).toBe(`smmapctl ${VERSION}\n`);
    expect(ok('man', ['-w', 'smmapd'])).toBe('/usr/share/man/man8/smmapd.8.gz\n');
    expect(ok('man', ['-w', 'smmapctl'])).toBe('/usr/share/man/man8/smmapctl.8.gz\n');
    // an empty store, readable by the daemon's user
    expect(ok('setpriv', ['--reuid=smmapd', '--regid=smmapd', '--clear-groups', 'smmapctl', 'query', 'fred'])).toBe('NOTFOUND Mailbox does not exist\n');
    if (haveCommand('systemd-analyze')) {
      for (const u of ['smmapd.service', 'smmapd.socket', 'smmapd-accept.socket', 'smmapd-accept@.service']) {
        const r = run('systemd-analyze', ['verify', `/lib/systemd/system/${u}`]);
        expect(`${r.stdout}${r.stderr}`, u).not.toMatch(/not loaded|not found|cannot be started|not executable|No such file/i);
      }
      expect(readFileSync('/lib/systemd/system/smmapd.service', 'utf8')).toMatch(/^ExecStart=\/usr\/bin\/smmapd -C \/etc\/smmapd.conf/m);
    }
  }, 300_000);

  it('serves through /etc/smmapd.conf as user smmapd, what root provisions with smmapctl', async () => {
    expect(installed).toBe(true);
    ok('smmapctl', ['mailbox', 'create', 'user/fred']);
    const port = await freePort();
    const d: ChildProcess = spawn('/usr/bin/smmapd', ['--listen', `inet:127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    d.stdout!.on('data', (b: Buffer) => (log += b.toString()));
    d.stderr!.on('data', (b: Buffer) => (log += b.toString()));
    try {
      await waitForPort(port, 30_000);
      expect(await query(`127.0.0.1:${port}`, ['fred', 'nosuch'])).toEqual(['OK fred', 'NOTFOUND Mailbox does not exist']);
      // every worker, once started, runs as smmapd (a worker still starting may not be yet)
      const users = (): string[] => ok('sh', ['-c', `for w in $(pgrep -P ${d.pid}); do stat -c %U /proc/$w; done`]).trim().split('\n');
      for (let i = 0; i < 100 && users().some((u) => u !== 'smmapd'); i++) await sleep(100);
      expect(users()).toEqual(expect.arrayContaining(['smmapd']));
      expect(users().filter((u) => u !== 'smmapd')).toEqual([]);
      // root writes while the daemon reads: the store and its -wal/-shm stay smmapd's
      ok('smmapctl', ['mailbox', 'create', 'user/joe']);
      expect(await query(`127.0.0.1:${port}`, ['joe'])).toEqual(['OK joe']);
      for (const f of ['smmapd.db', 'smmapd.db-wal', 'smmapd.db-shm']) {
        const p = `/var/lib/smmapd/${f}`;
        if (existsSync(p)) expect(owner(p), f).toMatch(/^smmapd:smmapd 6[04]0$/);
      }
      expect(log).not.toMatch(/error/);
    } finally {
      d.kill('SIGTERM');
      for (let i = 0; i < 200 && d.exitCode === null && d.signalCode === null; i++) await sleep(50);
    }
    // the stdio model as systemd's Accept=yes unit runs it: started as smmapd
    const r = run('setpriv', ['--reuid=smmapd', '--regid=smmapd', '--clear-groups', '/usr/bin/smmapd'], '11:smmapd fred,13:smmapd nosuch,');
    expect([r.status, r.stdout]).toEqual([0, '7:OK fred,31:NOTFOUND Mailbox does not exist,']);
  }, 120_000);

  it('dpkg --purge leaves nothing: programs, configuration, store, user, group', async () => {
    expect(installed).toBe(true);
    const p = await runDeb('dpkg', ['--purge', 'smmapd']);
    installed = false;
    expect(p.code, p.stdout + p.stderr).toBe(0);
    for (const p of ['/usr/bin/smmapd', '/usr/bin/smmapctl', '/usr/lib/smmapd', '/etc/smmapd.conf', '/var/lib/smmapd',
      '/usr/share/man/man8/smmapd.8.gz', '/lib/systemd/system/smmapd.service', '/usr/share/doc/smmapd']) {
      expect(existsSync(p), p).toBe(false);
    }
    expect(run('getent', ['passwd', 'smmapd']).status).not.toBe(0);
    expect(run('getent', ['group', 'smmapd']).status).not.toBe(0);
    expect(statSync('/var/lib').isDirectory()).toBe(true);
  }, 120_000);
});
