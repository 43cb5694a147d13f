// Installing without the Debian package: `npm pack`, then `npm install -g` of the tarball,
// into a private prefix (never the machine's /usr). What lands there must be a copy, not a
// link into this tree; the man pages must be where man finds them; both programs must run
// from the copy after the tarball is gone, and, as root, provision and serve for smmapd_user.
// npm fetches the dependencies from its cache or registry and builds better-sqlite3's addon:
// minutes on a busy machine.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildOnce, freePort, haveCommand, isRoot, ROOT, runAsync, sleep, waitForPort } from '../helpers/base';
import { describeWithPeer, firstMissing } from '../helpers/suite';
import { query } from '../helpers/socketmap';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const dir = mkdtempSync(join(tmpdir(), 'smmapd-install-'));
const prefix = join(dir, 'prefix');
const bin = (p: string): string => join(prefix, 'bin', p);

const run = (cmd: string, args: readonly string[]): { status: number | null; stdout: string; stderr: string } =>
  spawnSync(cmd, args, { encoding: 'utf8' });

describeWithPeer('npm pack, then npm install -g of the tarball', firstMissing([[haveCommand('npm'), 'npm']]), () => {
  beforeAll(() => buildOnce(), 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('installs a copy with both programs and both man pages', async () => {
    // --ignore-scripts: not prepack's `npm run build` again (buildOnce has built this tree)
    const pack = await runAsync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT });
    expect(pack.code, pack.stdout + pack.stderr).toBe(0);
    const tarball = join(dir, `smmapd-${VERSION}.tgz`);
    const files = run('tar', ['tzf', tarball]).stdout.split('\n').filter((f) => f !== '').sort();
    expect(files).toEqual(expect.arrayContaining(['package/dist/cli/smmapd.js', 'package/dist/cli/smmapd.bundle.js', 'package/dist/cli/smmapctl.js',
      'package/man/smmapd.8', 'package/man/smmapctl.8', 'package/conf/smmapd.conf', 'package/package.json', 'package/LICENSE', 'package/README.md']));
    // the programs' bundles, not tsc's module tree, the sources or the tests
    expect(files.filter((f) => /^package\/(src|test|dist\/(core|server|store|ctl))\//.test(f))).toEqual([]);
    const install = await runAsync('npm', ['install', '-g', '--prefix', prefix, '--allow-scripts=better-sqlite3', tarball], { cwd: ROOT });
    expect(install.code, install.stdout + install.stderr).toBe(0);
    rmSync(tarball);
    const pkgDir = join(prefix, 'lib/node_modules/smmapd');
    expect(lstatSync(pkgDir).isDirectory()).toBe(true); // `npm install -g .` would leave a link here
    expect(realpathSync(bin('smmapd')).startsWith(`${pkgDir}/`)).toBe(true);
    expect(realpathSync(bin('smmapctl')).startsWith(`${pkgDir}/`)).toBe(true);
    // npm links {prefix}/share/man/man8/NAME.8 to the copy's page; man names what it reads
    for (const p of ['smmapd', 'smmapctl']) {
      expect(lstatSync(join(prefix, 'share/man/man8', `${p}.8`)).isSymbolicLink()).toBe(true);
      const page = run('man', ['-M', join(prefix, 'share/man'), '-w', p]).stdout.trim();
      expect(realpathSync(page)).toBe(join(pkgDir, 'man', `${p}.8`));
    }
    expect(run(bin('smmapd'), ['--version']).stdout).toBe(`smmapd ${VERSION}\n`);
    expect(run(bin('smmapctl'), ['--version']).stdout).toBe(`smmapctl ${VERSION}\n`);
  }, 1_200_000);

  it('the installed copy provisions and serves; as root, for smmapd_user', async () => {
    expect(statSync(bin('smmapd')).isFile()).toBe(true);
    chmodSync(dir, 0o755);
    const conf = join(dir, 'smmapd.conf');
    const lib = join(dir, 'lib');
    writeFileSync(conf, `configdirectory: ${lib}\n${isRoot() ? 'smmapd_user: nobody\n' : ''}`);
    expect(run(bin('smmapctl'), ['-C', conf, 'init']).status).toBe(0);
    if (isRoot()) expect(run('stat', ['-c', '%U %a', lib, join(lib, 'smmapd.db')]).stdout).toBe('nobody 750\nnobody 640\n');
    expect(run(bin('smmapctl'), ['-C', conf, 'mailbox', 'create', 'user/fred']).status).toBe(0);
    const port = await freePort();
    const d = spawn(bin('smmapd'), ['-C', conf, '--listen', `inet:127.0.0.1:${port}`], { stdio: 'ignore' });
    try {
      await waitForPort(port, 30_000);
      expect(await query(`127.0.0.1:${port}`, ['fred', 'nosuch'])).toEqual(['OK fred', 'NOTFOUND Mailbox does not exist']);
    } finally {
      d.kill('SIGTERM');
      for (let i = 0; i < 200 && d.exitCode === null && d.signalCode === null; i++) await sleep(50);
    }
  }, 120_000);
});
