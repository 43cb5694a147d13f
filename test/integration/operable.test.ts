// Operable on a real MX (issue 14) and two defects of issue 13, with the real daemon:
// one configuration file starts every listener (smmapd_listen, smmapd_policy_listen, metrics)
// with no flags, and --listen overrides it; the start line; SIGHUP names what needs a
// restart; SIGUSR1 reloads and SIGUSR2 reopens the log, never Node's inspector;
// smmapd_allow_from closes other peers at once; a failed worker fork is retried; a log file
// root creates is writable by the workers that run as smmapd_user.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, childrenOf, freePort, isRoot, runCtl, sleep, SMMAPD, waitFor } from '../helpers/base';
import { fixtureHooks } from '../helpers/suite';
import { startSmmapd, type Smmapd } from '../helpers/daemon';
import { policyQuery } from '../helpers/policy';
import { query } from '../helpers/socketmap';

const { fx, confWith } = fixtureHooks();
const VERSION = (JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as { version: string }).version;

/** `smmapd -C conf` and no flags: everything from the file. */
const startConfigured = (conf: string, args: string[] = []): Promise<Smmapd> => startSmmapd({ conf, listen: [], args, ready: 'log' });

/** Pids listening on TCP port 9229 (Node's inspector), from ss. */
function inspectorPids(): number[] {
  const r = spawnSync('ss', ['-ltnpH', 'sport = :9229'], { encoding: 'utf8' });
  return [...r.stdout.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
}

function get(port: number): Promise<{ status: number; body: string } | 'closed'> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve('closed'));
    req.on('timeout', () => req.destroy());
  });
}

/** Connect, send `bytes`, and resolve with what came back before the server closed (or `timeout`). */
function exchange(port: number, bytes: string, ms = 3000): Promise<{ got: string; closedMs: number } | 'timeout'> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = '';
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d: Buffer) => (got += d.toString()));
    sock.on('error', () => undefined);
    sock.on('close', () => (clearTimeout(t), resolve({ got, closedMs: Date.now() - t0 })));
    const t = setTimeout(() => (sock.destroy(), resolve('timeout')), ms);
  });
}

/** 'connected', or the error code of the attempt (ECONNREFUSED: nothing listens). */
function connectResult(port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port });
    c.on('connect', () => (c.destroy(), resolve('connected')));
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

const POLICY_FRED = 'request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=fred\nclient_address=192.0.2.7\nclient_port=4711\n\n';

describe('one configuration, one daemon', () => {
  for (const workers of [1, 2]) {
    it(`smmapd -C FILE with no flags serves socketmap (inet and unix), policy and metrics (smmapd_workers: ${workers}); the start line says what runs`, async () => {
      const [p1, p2, mp] = [await freePort(), await freePort(), await freePort()];
      const sock = join(fx.dir, `one-${workers}.sock`);
      const conf = confWith(`one-${workers}.conf`, `smmapd_workers: ${workers}\nsmmapd_audit: yes\nsmmapd_listen: inet:127.0.0.1:${p1} unix:${sock}\nsmmapd_policy_listen: inet:127.0.0.1:${p2}\nsmmapd_metrics_listen: inet:127.0.0.1:${mp}`);
      const d = await startConfigured(conf);
      expect(await query(`127.0.0.1:${p1}`, ['fred', 'nosuch'])).toEqual(['OK fred', 'NOTFOUND Mailbox does not exist']);
      expect(await query(`unix:${sock}`, ['full'])).toEqual(['TEMP Over quota']);
      const pol = await policyQuery(p2, [POLICY_FRED, { recipient: 'nosuch' }]);
      expect(pol.replies).toEqual(['action=DUNNO', 'action=550 5.1.1 Mailbox does not exist']);
      // the policy audit line names Postfix's client, not the policy connection
      await waitFor(() => d.output().includes('client=<192.0.2.7:4711>'), 5000);
      expect(d.output()).toMatch(/auditlog: ok userid=<fred> client=<192\.0\.2\.7:4711> state=<RCPT>/);
      expect(await waitFor(() => d.output().includes('/metrics'), 5000)).toBe(true);
      const m = await get(mp);
      expect(m !== 'closed' && m.status).toBe(200);
      const first = d.output().split('\n')[0]!;
      expect(first).toContain(`smmapd ${VERSION} starting: config ${conf}; model listener, ${workers === 1 ? 'one process' : '2 workers'}`);
      expect(first).toContain(`socketmap inet:127.0.0.1:${p1} unix:${sock}; policy inet:127.0.0.1:${p2}; metrics inet:127.0.0.1:${mp}; store sqlite ${fx.store}; maps none; user `);
      expect(d.output()).toContain(`listening on inet:127.0.0.1:${p1}, unix:${sock}, inet:127.0.0.1:${p2} (policy)`);

      // SIGHUP: what it can apply it applies; every option that needs a restart is named
      const [q1, qm] = [await freePort(), await freePort()];
      writeFileSync(conf, readFileSync(conf, 'utf8').replace(`inet:127.0.0.1:${p1} `, `inet:127.0.0.1:${q1} `).replace(`:${mp}`, `:${qm}`).replace('smmapd_audit: yes', 'smmapd_audit: no'));
      d.proc.kill('SIGHUP');
      expect(await waitFor(() => d.output().includes('smmapd_metrics_listen changed'), 5000)).toBe(true);
      await sleep(300);
      const out = d.output();
      expect(out).toContain('warning: reload: smmapd_listen changed; it takes effect at the next restart');
      expect(out).toContain('warning: reload: smmapd_metrics_listen changed; it takes effect at the next restart');
      expect(out.match(/smmapd_metrics_listen changed/g)).toHaveLength(1); // once, not per worker
      expect(out).not.toContain('smmapd_policy_listen changed');
      expect(await query(`127.0.0.1:${p1}`, ['fred'])).toEqual(['OK fred']); // still the old address
      d.proc.kill('SIGTERM');
      expect(await d.exited()).toBe(0);
    });
  }

  it('--version: both programs print package.json\'s version', () => {
    expect(runCtl(null, ['--version'])).toMatchObject({ code: 0, stdout: `smmapctl ${VERSION}\n` });
    const r = spawnSync(process.execPath, [SMMAPD, '--version'], { encoding: 'utf8' });
    expect([r.status, r.stdout]).toEqual([0, `smmapd ${VERSION}\n`]);
  });

  it('--listen overrides the file: only its addresses are served, in its protocol (--policy)', async () => {
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
    const conf = confWith('override.conf', `smmapd_workers: 1\nsmmapd_listen: inet:127.0.0.1:${p1}\nsmmapd_policy_listen: inet:127.0.0.1:${p2}`);
    const d = await startSmmapd({ conf, listen: [`inet:127.0.0.1:${p3}`], args: ['--policy'], ready: 'log' });
    expect((await policyQuery(p3, [{ recipient: 'fred' }])).replies).toEqual(['action=DUNNO']);
    expect(await connectResult(p1)).toBe('ECONNREFUSED');
    expect(d.output().split('\n')[0]).toContain(`policy inet:127.0.0.1:${p3}; store`);
    expect(d.output()).not.toContain(`:${p1}`);
  });

  it('under inetd (stdin a socket) the file\'s addresses are not bound: the one client on stdin is served', async () => {
    const p1 = await freePort();
    const conf = confWith('inetd.conf', `smmapd_listen: inet:127.0.0.1:${p1}`);
    const srv = net.createServer({ pauseOnConnect: true }); // the child reads the connection, not us
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
    const client = net.connect({ host: '127.0.0.1', port });
    const server = await accepted;
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    const child = (await startSmmapd({ model: 'stdio', conf, stdio: [fd, fd, 'pipe'] })).proc;
    let reply = '';
    client.on('data', (b: Buffer) => (reply += b.toString()));
    client.write('11:smmapd fred,');
    expect(await waitFor(() => reply === '7:OK fred,', 10_000)).toBe(true);
    expect(await connectResult(p1)).toBe('ECONNREFUSED');
    client.end();
    await new Promise((r) => child.once('exit', r));
    server.destroy();
    srv.close();
  });
});

describe('SIGUSR1 and SIGUSR2 never open Node\'s inspector', () => {
  const logText = (f: string): string => (existsSync(f) ? readFileSync(f, 'utf8') : '');

  for (const workers of [1, 2]) {
    it(`listener (smmapd_workers: ${workers}): SIGUSR1 reloads as SIGHUP, also sent to a worker; SIGUSR2 reopens the log file`, async () => {
      const port = await freePort();
      const logFile = join(fx.dir, `usr-${workers}.log`);
      const conf = confWith(`usr-${workers}.conf`, `smmapd_workers: ${workers}\nsmmapd_log: ${logFile}`);
      const d = await startSmmapd({ conf, listen: [`inet:127.0.0.1:${port}`], ready: 'none' });
      expect(await waitFor(() => logText(logFile).includes('listening on'), 10_000)).toBe(true);
      const pids = [d.proc.pid!, ...childrenOf(d.proc.pid!)];
      expect(pids).toHaveLength(workers === 1 ? 1 : 3);
      d.proc.kill('SIGUSR1');
      expect(await waitFor(() => (logText(logFile).match(/notice: reloaded/g) ?? []).length >= workers, 5000)).toBe(true);
      if (workers === 2) {
        process.kill(pids[1]!, 'SIGUSR1'); // a worker on its own: reloads itself
        expect(await waitFor(() => (logText(logFile).match(/notice: reloaded/g) ?? []).length >= 3, 5000)).toBe(true);
      }
      // logrotate: move the file, then SIGUSR2; every process writes to the new one
      renameSync(logFile, `${logFile}.1`);
      d.proc.kill('SIGUSR2');
      await sleep(500);
      d.proc.kill('SIGHUP'); // each process logs a line: all of them must land in the new file
      expect(await waitFor(() => (logText(logFile).match(/notice: reloaded/g) ?? []).length >= workers, 5000)).toBe(true);
      expect(statSync(logFile).mode & 0o777).toBe(0o640);
      await sleep(300);
      expect(pids.every(alive)).toBe(true);
      expect(inspectorPids().filter((p) => pids.includes(p))).toEqual([]);
      expect(d.output()).not.toContain('Debugger listening');
      expect(await query(`127.0.0.1:${port}`, ['fred'])).toEqual(['OK fred']);
      d.proc.kill('SIGTERM');
      expect(await d.exited()).toBe(0);
      expect(logText(`${logFile}.1`)).not.toContain('shutting down'); // nothing more went to the moved file
    });
  }

  it('stdio (inetd): SIGUSR1 and SIGUSR2 neither end the process nor open the inspector', async () => {
    const conf = confWith('usr-stdio.conf', '');
    const child = (await startSmmapd({ model: 'stdio', conf })).proc;
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.stdin!.write('11:smmapd fred,');
    expect(await waitFor(() => out === '7:OK fred,', 10_000)).toBe(true);
    child.kill('SIGUSR1');
    child.kill('SIGUSR2');
    await sleep(500);
    expect(alive(child.pid!)).toBe(true);
    expect(inspectorPids()).not.toContain(child.pid);
    child.stdin!.write('13:smmapd nosuch,');
    expect(await waitFor(() => out.endsWith('31:NOTFOUND Mailbox does not exist,'), 5000)).toBe(true);
    child.stdin!.end();
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(0);
    expect(err).not.toContain('Debugger listening');
  });
});

describe('smmapd_allow_from', () => {
  it.each([1, 2])('socketmap, policy and metrics (smmapd_workers: %i): a peer not listed is closed at once, unanswered, logged a few times and counted; a listed one and the unix socket are served; SIGHUP applies a new list', async (workers) => {
    const [p1, p2, mp] = [await freePort(), await freePort(), await freePort()];
    const sock = join(fx.dir, `allow-${workers}.sock`);
    const base = `smmapd_workers: ${workers}\nsmmapd_listen: inet:127.0.0.1:${p1} unix:${sock}\nsmmapd_policy_listen: inet:127.0.0.1:${p2}\nsmmapd_metrics_listen: inet:127.0.0.1:${mp}`;
    const conf = confWith(`allow-${workers}.conf`, `${base}\nsmmapd_allow_from: 192.0.2.0/24 2001:db8::/32`);
    const d = await startConfigured(conf);
    await waitFor(() => d.output().includes('/metrics'), 5000);
    for (let i = 0; i < 10; i++) {
      const r = await exchange(p1, '11:smmapd fred,');
      expect(r !== 'timeout' && r.got).toBe('');
      expect(r !== 'timeout' && r.closedMs).toBeLessThan(2000);
    }
    const pr = await exchange(p2, POLICY_FRED);
    expect(pr !== 'timeout' && pr.got).toBe('');
    expect(await get(mp)).toBe('closed');
    expect(await query(`unix:${sock}`, ['fred'])).toEqual(['OK fred']);
    const refused = d.output().match(/warning: refused 127\.0\.0\.1 on inet:127\.0\.0\.1:\d+( \(metrics\))?: not allowed by smmapd_allow_from/g) ?? [];
    // the rest of the window is counted, not logged: five lines per process (with workers: each worker, and the primary for metrics)
    if (workers === 1) expect(refused.length).toBe(5);
    else expect(refused.length).toBeLessThanOrEqual(5 * (workers + 1));
    // SIGHUP: loopback allowed now; the refusals were counted
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('smmapd_allow_from: 192.0.2.0/24', 'smmapd_allow_from: 127.0.0.0/8'));
    d.proc.kill('SIGHUP');
    expect(await waitFor(() => (d.output().match(/notice: reloaded/g) ?? []).length >= workers, 5000)).toBe(true); // every worker
    expect(await query(`127.0.0.1:${p1}`, ['fred'])).toEqual(['OK fred']);
    expect((await policyQuery(p2, [POLICY_FRED])).replies).toEqual(['action=DUNNO']);
    const m = await get(mp);
    expect(m !== 'closed' && m.status).toBe(200);
    // counted: every refusal of the socketmap, policy and metrics listeners (the primary's too)
    expect(m !== 'closed' && m.body).toMatch(/^smmapd_connections_refused_total\{reason="not allowed"\} 12$/m);
    d.proc.kill('SIGTERM');
    expect(await d.exited()).toBe(0);
  });

  it('an IPv6 listener: ::1 matched as IPv6, an IPv4 client on a dual-stack socket as IPv4', async () => {
    const p = await freePort();
    const conf = confWith('allow6.conf', `smmapd_workers: 1\nsmmapd_listen: inet:*:${p}\nsmmapd_allow_from: ::1`);
    const d = await startConfigured(conf);
    expect(await query(`[::1]:${p}`, ['fred'])).toEqual(['OK fred']);
    const r = await exchange(p, '11:smmapd fred,'); // 127.0.0.1 arrives as ::ffff:127.0.0.1
    expect(r !== 'timeout' && r.got).toBe('');
    expect(d.output()).toContain('refused ::ffff:127.0.0.1 on inet:[::]:');
  });
});

describe('workers', () => {
  it('a worker that cannot be forked (out of descriptors) is forked again later, said at warning', async () => {
    const [port, mp] = [await freePort(), await freePort()];
    const conf = confWith('fork.conf', `smmapd_workers: 2\nsmmapd_metrics_listen: inet:127.0.0.1:${mp}`);
    const d = await startSmmapd({ conf, listen: [`inet:127.0.0.1:${port}`], ready: 'log' });
    const pid = d.proc.pid!;
    expect(await waitFor(() => childrenOf(pid).length === 2, 5000)).toBe(true);
    // a limit the metrics port's own bound (32 connections) can fill: the primary holds ~22
    expect(spawnSync('prlimit', ['--pid', String(pid), '--nofile=48:48']).status).toBe(0);
    // idle connections to the metrics port take the primary's descriptors
    const conns: net.Socket[] = [];
    for (let i = 0; i < 300; i++) {
      const c = net.connect({ host: '127.0.0.1', port: mp });
      c.on('error', () => undefined);
      c.on('connect', () => c.write('GET /metrics HTTP/1.1\r\nX: '));
      conns.push(c);
    }
    await sleep(1000);
    process.kill(childrenOf(pid)[0]!, 'SIGKILL');
    expect(await waitFor(() => d.output().includes('cannot start a worker'), 5000)).toBe(true);
    expect(d.output()).toMatch(/warning: cannot start a worker \(EMFILE\): running with 1 of 2 workers; trying again in \d+ ms/);
    for (const c of conns) c.destroy();
    expect(await waitFor(() => childrenOf(pid).length === 2 && d.output().includes('running with 2 workers again'), 15_000)).toBe(true);
    expect(await query(`127.0.0.1:${port}`, ['fred'])).toEqual(['OK fred']);
  });
});

describe.runIf(isRoot())('smmapd_log: FILE with smmapd_user', () => {
  it('the file root creates is smmapd_user\'s, 0640, and the workers\' lines reach it', async () => {
    const dir = join(fx.dir, 'logdir');
    mkdirSync(dir);
    chownSync(dir, 65534, 65534);
    chmodSync(fx.dir, 0o755);
    chmodSync(fx.store, 0o644);
    const logFile = join(dir, 'smmapd.log');
    const port = await freePort();
    const conf = confWith('owned-log.conf', `smmapd_workers: 2\nsmmapd_user: nobody\nsmmapd_log: ${logFile}`);
    const d = await startSmmapd({ conf, listen: [`inet:127.0.0.1:${port}`], ready: 'none' });
    expect(await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('listening on'), 10_000)).toBe(true);
    const st = statSync(logFile);
    expect([st.uid, st.mode & 0o777]).toEqual([65534, 0o640]);
    // a protocol error: a notice from a worker running as nobody
    expect(await exchange(port, 'abc')).not.toBe('timeout');
    expect(await waitFor(() => readFileSync(logFile, 'utf8').includes('protocol error from'), 5000)).toBe(true);
    // after logrotate (no `create`), SIGUSR2: the workers, as nobody, open the file again
    renameSync(logFile, `${logFile}.1`);
    d.proc.kill('SIGUSR2');
    await sleep(500);
    expect(await exchange(port, 'abc')).not.toBe('timeout');
    expect(await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('protocol error from'), 5000)).toBe(true);
    expect(d.output()).not.toContain('cannot');
    d.proc.kill('SIGTERM');
    expect(await d.exited()).toBe(0);
  });
});
