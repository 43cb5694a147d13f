// The --listen model under faults found by probing (issue 7): a symlink put at the unix socket
// path before a reload, an address that cannot be bound with workers, descriptors running
// out, a worker dying while clients connect, a client flooding the log with bad frames, and
// a root start that must end up as an unprivileged user. Each test failed before its fix.
import { chmodSync, chownSync, lchownSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childrenOf, freePort, haveCommand, isRoot, sleep, waitFor } from '../helpers/base';
import { fixtureHooks } from '../helpers/suite';
import { startSmmapd, type Smmapd } from '../helpers/daemon';
import { dial, netstring, query } from '../helpers/socketmap';

type Daemon = Smmapd;
const spawnDaemon = (conf: string, listen: string[], prefix: string[] = []): Promise<Daemon> => startSmmapd({ conf, listen, prefix, ready: 'none' });
const start = (conf: string, listen: string[], prefix: string[] = []): Promise<Daemon> => startSmmapd({ conf, listen, prefix, ready: 'log' });

/** The daemon's own pid under a `prlimit` prefix (prlimit execs, so it is the same process). */
const pidOf = (d: Daemon): number => d.proc.pid!;

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** Opens a connection, sends one request, resolves with the reply, '<closed>' or '<hung>' (no reply and no close within ms). */
function askOnce(target: string, key: string, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = dial(target);
    let buf = '';
    const t = setTimeout(() => (sock.destroy(), resolve('<hung>')), ms);
    sock.on('error', () => undefined);
    sock.on('connect', () => sock.write(netstring(`smmapd ${key}`)));
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      if (/^\d+:.*,/.test(buf)) {
        clearTimeout(t);
        sock.destroy();
        resolve(buf);
      }
    });
    sock.on('close', () => {
      clearTimeout(t);
      resolve(buf !== '' ? buf : '<closed>');
    });
  });
}

const { fx, confWith } = fixtureHooks();

for (const workers of [1, 2]) {
  describe(`smmapd_workers: ${workers}`, () => {
    it('SIGHUP never changes what a symlink put at the unix socket path points to', async () => {
      const dir = join(fx.dir, `sockdir-${workers}`);
      mkdirSync(dir);
      chmodSync(dir, 0o1777);
      const victim = join(fx.dir, `victim-${workers}`);
      writeFileSync(victim, 'secret\n');
      chmodSync(victim, 0o600);
      const sock = join(dir, 'smmapd.sock');
      const conf = confWith(`link-${workers}.conf`, `smmapd_workers: ${workers}\nsmmapd_unix_socket_mode: 0660`);
      const base = readFileSync(conf, 'utf8').replace('smmapd_unix_socket_mode: 0660\n', '');
      const d = await start(conf, [`unix:${sock}`]);
      expect(statSync(sock).mode & 0o777).toBe(0o660);
      // another user who can write the directory swaps the socket for a link
      unlinkSync(sock);
      symlinkSync(victim, sock);
      // a reload that changes the mode (and owner): the link's target must not get it
      writeFileSync(conf, `${base}smmapd_unix_socket_mode: 0666\nsmmapd_unix_socket_owner: nobody\n`);
      d.proc.kill('SIGHUP');
      expect(await waitFor(() => /no longer our socket/.test(d.output()), 5000), d.output()).toBe(true);
      const st = statSync(victim);
      expect(st.mode & 0o777).toBe(0o600);
      expect(st.uid).toBe(process.getuid!());
      d.proc.kill('SIGTERM');
      expect(await d.exited()).toBe(0);
    }, 30_000);
  });
}

describe('an address that cannot be bound, with workers', () => {
  it('in use: exit 75 with one line saying so, no restart loop', async () => {
    const port = await freePort();
    const holder = net.createServer().listen(port, '127.0.0.1');
    await new Promise((r) => holder.once('listening', r));
    try {
      const d = await spawnDaemon(confWith('inuse.conf', 'smmapd_workers: 2'), [`inet:127.0.0.1:${port}`]);
      const code = await Promise.race([d.exited(), sleep(8000).then(() => 'still running')]);
      expect(code, d.output()).toBe(75);
      const errors = d.output().split('\n').filter((l) => /error/.test(l));
      expect(errors, d.output()).toHaveLength(1);
      expect(errors[0]).toMatch(/cannot listen on inet:127\.0\.0\.1:\d+: address in use/);
      expect(d.output()).not.toMatch(/starting another|\n\s+at /);
    } finally {
      holder.close();
    }
  }, 20_000);

  it('a dangling symlink at the unix socket path: exit 75, one line', async () => {
    const sock = join(fx.dir, 'dangling.sock');
    symlinkSync(join(fx.dir, 'nowhere'), sock);
    const d = await spawnDaemon(confWith('dangling.conf', 'smmapd_workers: 2'), [`unix:${sock}`]);
    const code = await Promise.race([d.exited(), sleep(8000).then(() => 'still running')]);
    expect(code, d.output()).toBe(75);
    expect(d.output().split('\n').filter((l) => /error/.test(l)), d.output()).toHaveLength(1);
    expect(d.output()).not.toMatch(/starting another/);
  }, 20_000);

  it('workers that keep dying are restarted with a growing delay, not in a tight loop', async () => {
    const port = await freePort();
    const d = await start(confWith('crash.conf', 'smmapd_workers: 2'), [`inet:127.0.0.1:${port}`]);
    const t0 = Date.now();
    let kills = 0;
    while (Date.now() - t0 < 4000) {
      for (const p of childrenOf(pidOf(d))) {
        try {
          process.kill(p, 'SIGKILL');
          kills++;
        } catch {
          /* gone */
        }
      }
      await sleep(20);
    }
    // 2 workers, killed as soon as they appear: without backoff, ~20 restarts in 4 s
    const restarts = (d.output().match(/exited \(SIGKILL\)/g) ?? []).length;
    expect(restarts, d.output()).toBeLessThanOrEqual(8);
    expect(kills).toBeGreaterThan(0);
    expect(d.output()).toMatch(/starting another in \d+ ms/);
    d.proc.kill('SIGTERM');
    expect(await d.exited()).toBe(0);
  }, 20_000);
});

describe('descriptors running out, with workers', () => {
  it.runIf(haveCommand('prlimit'))('under prlimit --nofile=256: 600 connections in bursts, then they leave; it answers again and says so', async () => {
    const port = await freePort();
    const target = `127.0.0.1:${port}`;
    const d = await start(confWith('emfile.conf', 'smmapd_workers: 2\nsmmapd_max_connections: 5000'), [`inet:${target}`], ['prlimit', '--nofile=256:256']);
    expect(await query(target, ['fred'])).toEqual(['OK fred']);
    const primaryFds = fdCount(pidOf(d));
    const open: net.Socket[] = [];
    for (let burst = 0; burst < 6; burst++) {
      for (let i = 0; i < 100; i++) {
        const s = dial(target);
        s.on('error', () => undefined);
        s.on('connect', () => s.write(netstring('smmapd fred')));
        open.push(s);
      }
      await sleep(200);
    }
    await sleep(1000);
    for (const s of open) s.destroy();
    await sleep(1500);
    // every fresh client is answered again, within a few seconds
    const answers = await Promise.all(Array.from({ length: 20 }, () => askOnce(target, 'fred', 5000)));
    expect(answers).toEqual(Array.from({ length: 20 }, () => '7:OK fred,'));
    expect(fdCount(pidOf(d))).toBeLessThanOrEqual(primaryFds + 2);
    expect(d.output()).toMatch(/file descriptor limit \(256\)/);
    // said a few times per window, not once per refused connection
    expect((d.output().match(/file descriptor limit/g) ?? []).length).toBeLessThanOrEqual(12);
  }, 60_000);
});

describe('a worker dying while clients connect', () => {
  it('every client gets its reply or a close, none is left hanging', async () => {
    const port = await freePort();
    const target = `127.0.0.1:${port}`;
    const d = await start(confWith('dying.conf', 'smmapd_workers: 2'), [`inet:${target}`]);
    const results: Array<Promise<string>> = [];
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 40; i++) results.push(askOnce(target, 'fred', 6000));
      const kids = childrenOf(pidOf(d));
      if (kids.length > 0) process.kill(kids[0]!, 'SIGKILL');
      await sleep(300);
    }
    const got = await Promise.all(results);
    expect(got.filter((r) => r === '<hung>')).toEqual([]);
    expect(got.filter((r) => r === '7:OK fred,').length).toBeGreaterThan(0);
    d.proc.kill('SIGTERM');
    await d.exited();
  }, 40_000);
});

describe('protocol errors in the log', () => {
  it('the first few per peer address per minute, then one line with the count of the rest', async () => {
    const port = await freePort();
    const target = `127.0.0.1:${port}`;
    const d = await start(confWith('flood.conf', 'smmapd_workers: 1'), [`inet:${target}`]);
    // 60 malformed frames: `abc` is no netstring length
    const bad = await Promise.all(
      Array.from({ length: 60 }, () =>
        new Promise<void>((resolve) => {
          const s = dial(target);
          s.on('error', () => resolve());
          s.on('connect', () => s.write('abc:smmapd fred,'));
          s.resume(); // read the reply, so that the close comes through
          s.on('close', () => resolve());
        }),
      ),
    );
    expect(bad).toHaveLength(60);
    await sleep(300);
    expect((d.output().match(/protocol error from/g) ?? []).length).toBe(5);
    d.proc.kill('SIGTERM');
    expect(await d.exited()).toBe(0);
    // on exit, the window's count is written
    expect(d.output()).toMatch(/protocol errors from 127\.0\.0\.1: 55 more in the last 60 s not logged/);
  }, 30_000);
});

describe.runIf(isRoot())('started as root with smmapd_user: nobody', () => {
  beforeAll(() => {
    // the store must be readable by that user (SQLite wants the directory for its -shm too)
    chownSync(fx.dir, 65534, 65534);
    for (const f of readdirSync(fx.dir)) lchownSync(join(fx.dir, f), 65534, 65534);
  });
  afterAll(() => {
    chownSync(fx.dir, 0, 0);
  });

  const uidOf = (pid: number): number => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

  for (const workers of [1, 2]) {
    it(`workers: ${workers}: binds first (a port below 1024 would do), then serves as nobody`, async () => {
      const port = await freePort();
      const sock = join(fx.dir, `priv-${workers}.sock`);
      const d = await start(confWith(`priv-${workers}.conf`, `smmapd_workers: ${workers}\nsmmapd_user: nobody\nsmmapd_group: nogroup\nsmmapd_unix_socket_owner: nobody`), [
        `inet:127.0.0.1:${port}`,
        `unix:${sock}`,
      ]);
      const servers = workers === 1 ? [pidOf(d)] : childrenOf(pidOf(d));
      expect(servers).toHaveLength(workers);
      for (const p of servers) expect(uidOf(p)).toBe(65534);
      for (let i = 0; i < 4; i++) expect(await query(`127.0.0.1:${port}`, ['fred', 'nosuch'])).toEqual(['OK fred', 'NOTFOUND Mailbox does not exist']);
      expect(await query(`unix:${sock}`, ['fred'])).toEqual(['OK fred']);
      expect(d.output()).not.toMatch(/running as root/);
      d.proc.kill('SIGTERM');
      expect(await d.exited()).toBe(0);
    }, 30_000);
  }

  it('unset: keeps working as root and warns once that it does', async () => {
    const port = await freePort();
    const d = await start(confWith('asroot.conf', 'smmapd_workers: 2'), [`inet:127.0.0.1:${port}`]);
    expect(await query(`127.0.0.1:${port}`, ['fred'])).toEqual(['OK fred']);
    expect((d.output().match(/running as root/g) ?? []).length).toBe(1);
    d.proc.kill('SIGTERM');
    expect(await d.exited()).toBe(0);
  }, 30_000);

  it('an unknown smmapd_user: refuses to start (75), never serves as root', async () => {
    const port = await freePort();
    const d = await spawnDaemon(confWith('nouser.conf', 'smmapd_workers: 1\nsmmapd_user: no-such-user-here'), [`inet:127.0.0.1:${port}`]);
    expect(await d.exited()).toBe(75);
    expect(d.output()).toMatch(/cannot run as smmapd_user no-such-user-here: no such user/);
  }, 30_000);
});
