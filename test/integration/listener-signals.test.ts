// The --listen model's lifecycle, in one process (smmapd_workers: 1) and with cluster
// workers (2): SIGTERM drains and exits 0 within the bound, SIGHUP re-reads the configuration
// and reopens the store without dropping connections, smmapd_max_connections refuses cleanly,
// and the unix socket gets the configured mode, owner and group.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, renameSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, childrenOf, freePort, isRoot, pidsMatching, sleep, SMMAPD, waitFor } from '../helpers/base';
import { ctl } from '../helpers/fixture';
import { describeWithPeer, fixtureHooks } from '../helpers/suite';
import { startSmmapd, type Smmapd } from '../helpers/daemon';
import { dial, netstring, parseReplies, query } from '../helpers/socketmap';

const start = (conf: string, listen: string[], args: string[] = []): Promise<Smmapd> => startSmmapd({ conf, listen, args, ready: 'log' });

/** A connection that collects replies; `next()` resolves with the next one. */
function client(target: string): { sock: net.Socket; ask(key: string): Promise<string>; closed(): boolean } {
  const sock = dial(target);
  sock.on('error', () => undefined);
  let buf: Buffer = Buffer.alloc(0);
  let isClosed = false;
  const got: string[] = [];
  const waiting: Array<(r: string) => void> = [];
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    const { replies, rest } = parseReplies(buf);
    buf = rest;
    for (const r of replies) got.push(r.toString());
    while (waiting.length > 0 && got.length > 0) waiting.shift()!(got.shift()!);
  });
  sock.on('close', () => {
    isClosed = true;
    while (waiting.length > 0) waiting.shift()!('<closed>');
  });
  return {
    sock,
    ask: (key) => {
      sock.write(netstring(`smmapd ${key}`));
      return new Promise((resolve) => {
        if (got.length > 0) return resolve(got.shift()!);
        if (isClosed) return resolve('<closed>');
        waiting.push(resolve);
      });
    },
    closed: () => isClosed,
  };
}

const { fx, confWith } = fixtureHooks();

for (const workers of [1, 2]) {
  describe(`--listen, smmapd_workers: ${workers}`, () => {
    it('SIGTERM: every request that has arrived is answered, connections close, new clients are refused, exit 0 within the bound', async () => {
      const conf = confWith(`term-${workers}.conf`, `smmapd_workers: ${workers}\nsmmapd_shutdown_timeout: 5`);
      const port = await freePort();
      const sock = join(fx.dir, `term-${workers}.sock`);
      const d = await start(conf, [`inet:127.0.0.1:${port}`, `unix:${sock}`]);
      const idle = client(d.target);
      expect(await idle.ask('fred')).toBe('OK fred');
      // a busy client: 2000 pipelined requests in one write
      const busy = dial(d.target);
      busy.on('error', () => undefined);
      let data = Buffer.alloc(0);
      let busyClosed = false;
      busy.on('data', (b: Buffer) => (data = Buffer.concat([data, b])));
      busy.on('close', () => (busyClosed = true));
      const keys = ['fred', 'nosuch', 'full'];
      busy.write(Buffer.concat(Array.from({ length: 2000 }, (_, i) => netstring(`smmapd ${keys[i % 3]}`))));
      await waitFor(() => data.length > 0, 5000);
      const t0 = Date.now();
      d.proc.kill('SIGTERM');
      expect(await d.exited()).toBe(0);
      expect(Date.now() - t0).toBeLessThan(4000);
      expect(await waitFor(() => busyClosed && idle.closed(), 2000)).toBe(true);
      // whole replies only, each the right one for its request, in order
      const { replies, rest } = parseReplies(data);
      expect(rest.length).toBe(0);
      expect(replies.length).toBeGreaterThan(0);
      const want = ['OK fred', 'NOTFOUND Mailbox does not exist', 'TEMP Over quota'];
      replies.forEach((r, i) => expect(r.toString()).toBe(want[i % 3]));
      // the listeners are gone, and the unix socket file with them
      expect(await new Promise((r) => net.connect({ host: '127.0.0.1', port }).once('connect', () => r('connected')).once('error', () => r('refused')))).toBe('refused');
      expect(existsSync(sock)).toBe(false);
    }, 30_000);

    it('SIGHUP: a changed configuration and a replaced store apply to open connections too, none dropped', async () => {
      const conf = confWith(`hup-${workers}.conf`, `smmapd_workers: ${workers}`);
      const port = await freePort();
      const d = await start(conf, [`inet:127.0.0.1:${port}`]);
      const conns = [client(d.target), client(d.target), client(d.target)];
      for (const c of conns) expect(await c.ask('full')).toBe('TEMP Over quota');
      // new option: over quota becomes a permanent failure
      writeFileSync(conf, `configdirectory: ${fx.dir}\nsmmapd_store: ${fx.store}\nunixhierarchysep: no\nsmmapd_workers: ${workers}\nlmtp_over_quota_perm_failure: yes\n`);
      d.proc.kill('SIGHUP');
      expect(await waitFor(() => (d.output().match(/reloaded/g) ?? []).length >= workers, 5000)).toBe(true);
      for (const c of conns) expect(await c.ask('full')).toBe('PERM Over quota');
      // a new store file renamed over the old one (a new inode): seen after SIGHUP
      const next = join(fx.dir, `next-${workers}.db`);
      copyFileSync(fx.store, next);
      const nextConf = confWith(`next-${workers}.conf`, '');
      writeFileSync(nextConf, `configdirectory: ${fx.dir}\nsmmapd_store: ${next}\nunixhierarchysep: no\n`);
      ctl(nextConf, ['mailbox', 'create', 'user.newcomer']);
      const live = join(fx.dir, `live-${workers}.db`);
      copyFileSync(fx.store, live);
      writeFileSync(conf, `configdirectory: ${fx.dir}\nsmmapd_store: ${live}\nunixhierarchysep: no\nsmmapd_workers: ${workers}\n`);
      d.proc.kill('SIGHUP');
      expect(await waitFor(() => (d.output().match(/reloaded/g) ?? []).length >= 2 * workers, 5000)).toBe(true);
      for (const c of conns) expect(await c.ask('newcomer')).toBe('NOTFOUND Mailbox does not exist');
      renameSync(next, live);
      d.proc.kill('SIGHUP');
      expect(await waitFor(() => (d.output().match(/reloaded/g) ?? []).length >= 3 * workers, 5000)).toBe(true);
      for (const c of conns) {
        expect(await c.ask('newcomer')).toBe('OK newcomer');
        expect(await c.ask('full')).toBe('TEMP Over quota');
        expect(c.closed()).toBe(false);
      }
      expect(alive(d.proc.pid!)).toBe(true);
      // a broken configuration is refused, the running one stays
      writeFileSync(conf, 'this line has no colon\n');
      d.proc.kill('SIGHUP');
      expect(await waitFor(() => d.output().includes('reload failed'), 5000)).toBe(true);
      expect(await conns[0]!.ask('newcomer')).toBe('OK newcomer');
      d.proc.kill('SIGTERM');
      expect(await d.exited()).toBe(0);
    }, 30_000);
  });
}

describe('--listen, connection limit', () => {
  it('smmapd_max_connections: past the limit a client gets TEMP to its request and is closed; below it again, clients are served', async () => {
    const conf = confWith('limit.conf', 'smmapd_workers: 1\nsmmapd_max_connections: 2');
    const port = await freePort();
    const d = await start(conf, [`inet:127.0.0.1:${port}`]);
    const a = client(d.target);
    const b = client(d.target);
    expect(await a.ask('fred')).toBe('OK fred');
    expect(await b.ask('fred')).toBe('OK fred');
    const c = client(d.target);
    expect(await c.ask('fred')).toBe('TEMP Too many connections, try again later');
    expect(await waitFor(() => c.closed(), 2000)).toBe(true);
    expect(d.output()).toContain('connection limit (2) reached');
    a.sock.end();
    await waitFor(() => a.closed(), 2000);
    await sleep(100);
    expect(await query(d.target, ['fred', 'nosuch'])).toEqual(['OK fred', 'NOTFOUND Mailbox does not exist']);
    expect(await b.ask('full')).toBe('TEMP Over quota');
    d.proc.kill('SIGTERM');
    expect(await d.exited()).toBe(0);
  }, 30_000);

  it('-U/-T given to --listen: exits after -T idle seconds once a connection was served', async () => {
    const conf = confWith('idle.conf', 'smmapd_workers: 1');
    const port = await freePort();
    const d = await start(conf, [`inet:127.0.0.1:${port}`], ['-T', '1']);
    await sleep(1500);
    expect(alive(d.proc.pid!)).toBe(true); // not before a first connection
    expect(await query(d.target, ['fred'])).toEqual(['OK fred']);
    const t0 = Date.now();
    expect(await d.exited()).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  }, 30_000);

  it('with workers, a worker killed with connections open does not stall -T: the primary still exits when idle', async () => {
    const conf = confWith('workers-idle.conf', 'smmapd_workers: 2');
    const port = await freePort();
    const d = await start(conf, [`inet:127.0.0.1:${port}`], ['-T', '1']);
    const held = [client(d.target), client(d.target)];
    for (const c of held) expect(await c.ask('fred')).toBe('OK fred');
    // every worker dies (SIGKILL) with its connection open; the primary forks replacements
    for (const pid of childrenOf(d.proc.pid!)) process.kill(pid, 'SIGKILL');
    expect(await waitFor(() => held.every((c) => c.closed()), 5000)).toBe(true);
    const t0 = Date.now();
    expect(await Promise.race([d.exited(), sleep(8000).then(() => 'still running')])).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8000);
  }, 30_000);
});

describeWithPeer('--listen, unix socket permissions (root: chown)', isRoot() ? null : 'root', () => {
  const uid = (n: string): number => Number(spawnSync('id', ['-u', n], { encoding: 'utf8' }).stdout.trim());
  const gid = (n: string): number => Number(spawnSync('getent', ['group', n], { encoding: 'utf8' }).stdout.split(':')[2]);
  const canConnect = (user: string, path: string): boolean =>
    spawnSync('setpriv', [`--reuid=${user}`, `--regid=${user === 'cyrus' ? 'mail' : 'nogroup'}`, '--clear-groups', process.execPath, '-e',
      `require('net').connect(${JSON.stringify(path)}).on('connect', () => process.exit(0)).on('error', () => process.exit(1))`]).status === 0;

  for (const workers of [1, 2]) {
    it(`smmapd_unix_socket_mode/owner/group (workers: ${workers}); SIGHUP applies new ones`, async () => {
      const sock = join(fx.dir, `perm-${workers}.sock`);
      const conf = confWith(`perm-${workers}.conf`, `smmapd_workers: ${workers}\nsmmapd_unix_socket_mode: 0660\nsmmapd_unix_socket_owner: cyrus\nsmmapd_unix_socket_group: mail`);
      const d = await start(conf, [`unix:${sock}`]);
      await waitFor(() => (statSync(sock).mode & 0o777) === 0o660, 3000);
      const st = statSync(sock);
      expect(st.mode & 0o777).toBe(0o660);
      expect(st.uid).toBe(uid('cyrus'));
      expect(st.gid).toBe(gid('mail'));
      expect(await query(`unix:${sock}`, ['fred'])).toEqual(['OK fred']);
      expect(canConnect('cyrus', sock)).toBe(true);
      expect(canConnect('nobody', sock)).toBe(false);
      writeFileSync(conf, `configdirectory: ${fx.dir}\nsmmapd_store: ${fx.store}\nunixhierarchysep: no\nsmmapd_workers: ${workers}\nsmmapd_unix_socket_mode: 0666\n`);
      d.proc.kill('SIGHUP');
      expect(await waitFor(() => (statSync(sock).mode & 0o777) === 0o666, 3000)).toBe(true);
      expect(canConnect('nobody', sock)).toBe(true);
      d.proc.kill('SIGTERM');
      expect(await d.exited()).toBe(0);
      expect(existsSync(sock)).toBe(false);
      expect(pidsMatching(`${SMMAPD} -C ${conf}`)).toEqual([]);
    }, 30_000);
  }
});
