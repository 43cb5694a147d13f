// systemd socket activation through the real systemd-socket-activate (systemd 252), with the
// example units of conf/systemd (their ListenStream, Accept, FileDescriptorName and ExecStart,
// the test's address and paths swapped in): Accept=no (one process for every client, -T idle
// exit, -U, SIGTERM) and Accept=yes (a connected socket on fd 3, told apart by name or by
// probing /proc; and the inetd-style stdin/stdout).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { alive, freePort, haveCommand, killMatching, pidsMatching, sleep, SMMAPD, SMMAPD_COMMAND, waitFor } from '../helpers/base';
import { startSmmapd, type Smmapd } from '../helpers/daemon';
import { ANSWERS, EXAMPLE, makeFixture, readExample, substitute, unitValues, type Fixture } from '../helpers/fixture';
import { gccAvailable, runLoad } from '../helpers/load';
import { describeWithPeer, firstMissing } from '../helpers/suite';
import { policyQuery } from '../helpers/policy';
import { dial, netstring, query } from '../helpers/socketmap';

const running: Smmapd[] = [];

/** systemd-socket-activate with `args` running `command`, nothing awaited. */
async function activate(args: string[], command: string[]): Promise<Smmapd> {
  const a = await startSmmapd({ model: 'socket-activate', activate: args, command, ready: 'none' });
  running.push(a);
  return a;
}

/** How the units start smmapd: found on systemd's PATH, where `npm install -g` put it (/usr/bin with Debian's node, /usr/local/bin otherwise). */
const SYSTEMD_PROGRAM = '/usr/bin/env smmapd';

/** ExecStart of a unit from conf/systemd, as argv, with the test's paths and extra swaps. */
function execStart(unit: string, conf: string, swaps: Array<[string, string]> = []): string[] {
  const exec = unitValues(readExample(`systemd/${unit}`)).get('ExecStart')?.[0];
  if (exec === undefined) throw new Error(`${unit} has no ExecStart`);
  return substitute(exec, [[SYSTEMD_PROGRAM, SMMAPD_COMMAND], [EXAMPLE.config, conf], ...swaps]).split(/\s+/);
}

/** The .socket's settings as systemd-socket-activate options, on the test's address. */
function socketArgs(unit: string, listen: string): string[] {
  const v = unitValues(readExample(`systemd/${unit}`));
  expect(v.get('ListenStream')).toEqual([`${EXAMPLE.host}:${EXAMPLE.port}`]);
  const args = ['-l', listen];
  if (v.get('Accept')?.[0] === 'yes') args.push('--accept');
  const name = v.get('FileDescriptorName')?.[0];
  if (name !== undefined) args.push(`--fdname=${name}`);
  return args;
}

/** smmapd processes; an Accept=yes activator's own command line names smmapd too: not counted. */
const ours = (fx: Fixture): number[] =>
  pidsMatching(`${SMMAPD} -C ${fx.conf}`).filter((p) => !running.some((a) => a.proc.pid === p && !isExecd(p)));

/** Without --accept the activator execs the service: then its pid is the service's. */
function isExecd(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('systemd-socket-activate');
  } catch {
    return false;
  }
}

let fx: Fixture;
beforeAll(() => {
  fx = makeFixture();
});
afterEach(async () => {
  for (const a of running.splice(0)) {
    a.signal('SIGTERM');
    await waitFor(() => a.hasExited(), 5000);
  }
  await waitFor(() => pidsMatching(`${SMMAPD} -C ${fx.conf}`).length === 0, 3000);
  const left = killMatching(`${SMMAPD} -C ${fx.conf}`);
  expect(left, 'smmapd processes left behind').toEqual([]);
});
afterAll(() => {
  rmSync(fx.dir, { recursive: true, force: true });
});

const missing = firstMissing([
  [haveCommand('systemd-socket-activate'), 'systemd-socket-activate (systemd)'],
  [gccAvailable(), 'gcc (for bench/smload.c)'],
]);

describeWithPeer('systemd socket activation', missing, () => {
  it('Accept=no (smmapd.socket + smmapd.service): one process serves every client, then exits after -T idle', async () => {
    const port = await freePort();
    const sa = await activate(socketArgs('smmapd.socket', `127.0.0.1:${port}`), execStart('smmapd.service', fx.conf, [['-T 600', '-T 2']]));
    await sleep(300);
    const target = `127.0.0.1:${port}`;
    expect(await query(target, ANSWERS.map(([k]) => k))).toEqual(ANSWERS.map(([, r]) => r));
    for (let i = 0; i < 20; i++) expect(await query(target, ['fred'])).toEqual(['OK fred']);
    // the activator exec'd the service: it is our one process
    expect(ours(fx)).toEqual([sa.proc.pid]);
    const r = await runLoad(target, fx.keys, 4, 2);
    expect(r.errors).toBe(0);
    expect(r.ok + r.notfound + r.temp).toBe(r.requests);
    expect(ours(fx)).toEqual([sa.proc.pid]);
    const idleFrom = Date.now();
    expect(await waitFor(() => sa.hasExited(), 6000), 'still running after -T 2 idle').toBe(true);
    expect(Date.now() - idleFrom).toBeGreaterThanOrEqual(1500);
    expect(sa.proc.exitCode).toBe(0);
  }, 30_000);

  it('Accept=no with a TCP and a unix socket (LISTEN_FDS=2): both served by the one process', async () => {
    const port = await freePort();
    const sock = join(fx.dir, 'sa.sock');
    const sa = await activate(['-l', `127.0.0.1:${port}`, '-l', sock, '--fdname=tcp:unix'], execStart('smmapd.service', fx.conf));
    await sleep(300);
    expect(await query(`127.0.0.1:${port}`, ['fred'])).toEqual(['OK fred']);
    expect(await query(`unix:${sock}`, ['fred', 'nosuch'])).toEqual(['OK fred', 'NOTFOUND Mailbox does not exist']);
    expect(await query(`127.0.0.1:${port}`, ['full'])).toEqual(['TEMP Over quota']);
    expect(ours(fx)).toEqual([sa.proc.pid]);
    // SIGTERM (systemctl stop): exit 0, and the unix socket stays systemd's (not unlinked by us)
    sa.proc.kill('SIGTERM');
    expect(await waitFor(() => sa.hasExited(), 5000)).toBe(true);
    expect(sa.proc.exitCode).toBe(0);
  }, 30_000);

  it('Accept=no, smmapd.socket + smmapd-policy.socket (FileDescriptorName=policy): one process serves socketmap and the policy service', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const names = ['smmapd.socket', 'smmapd-policy.socket'].map((u) => unitValues(readExample(`systemd/${u}`)).get('FileDescriptorName')?.[0]);
    expect(names[1]).toBe('policy');
    expect(unitValues(readExample('systemd/smmapd-policy.socket')).get('Service')).toEqual(['smmapd.service']);
    const sa = await activate(['-l', `127.0.0.1:${p1}`, '-l', `127.0.0.1:${p2}`, `--fdname=${names.join(':')}`], execStart('smmapd.service', fx.conf));
    await sleep(300);
    expect(await query(`127.0.0.1:${p1}`, ['fred', 'nosuch'])).toEqual(['OK fred', 'NOTFOUND Mailbox does not exist']);
    expect((await policyQuery(p2, [{ recipient: 'fred' }, { recipient: 'full', size: 5000 }])).replies).toEqual(['action=DUNNO', 'action=452 4.2.2 Over quota']);
    expect(ours(fx)).toEqual([sa.proc.pid]);
    expect(sa.output()).toMatch(/starting: config .*; model systemd; socketmap fd 3 \(smmapd\); policy fd 4 \(policy\);/);
    sa.proc.kill('SIGTERM');
    expect(await waitFor(() => sa.hasExited(), 5000)).toBe(true);
    expect(sa.proc.exitCode).toBe(0);
  }, 30_000);

  it('Accept=no, -U 3: exits once it has served three connections', async () => {
    const port = await freePort();
    const sa = await activate(['-l', `127.0.0.1:${port}`], execStart('smmapd.service', fx.conf, [['-T 600', '-U 3 -T 0']]));
    await sleep(300);
    for (let i = 0; i < 3; i++) expect(await query(`127.0.0.1:${port}`, ['fred'])).toEqual(['OK fred']);
    expect(await waitFor(() => sa.hasExited(), 5000)).toBe(true);
    expect(sa.proc.exitCode).toBe(0);
  }, 30_000);

  it('Accept=no, SIGTERM with a client connected: its answers are sent, it is closed, exit 0', async () => {
    const port = await freePort();
    const sa = await activate(['-l', `127.0.0.1:${port}`], execStart('smmapd.service', fx.conf));
    await sleep(300);
    const c = dial(`127.0.0.1:${port}`);
    let got = '';
    let closed = false;
    c.on('data', (d: Buffer) => (got += d.toString()));
    c.on('close', () => (closed = true));
    c.on('error', () => undefined);
    c.write(Buffer.concat([netstring('smmapd fred'), netstring('smmapd nosuch')]));
    await waitFor(() => got.length > 0 && ours(fx).length === 1, 5000);
    await sleep(100);
    const t0 = Date.now();
    sa.proc.kill('SIGTERM');
    expect(await waitFor(() => sa.hasExited(), 5000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(sa.proc.exitCode).toBe(0);
    expect(await waitFor(() => closed, 2000)).toBe(true);
    expect(got).toBe('7:OK fred,31:NOTFOUND Mailbox does not exist,');
  }, 30_000);

  for (const variant of [
    { title: 'fd 3 told apart by probing /proc (systemd-socket-activate sets no LISTEN_FDNAMES)', extra: [] as string[] },
    { title: 'fd 3 named "connection" (LISTEN_FDNAMES, as real systemd sets it)', extra: ['--fdname=connection'] },
    { title: 'stdin/stdout (--inetd, StandardInput=socket)', extra: ['--inetd'] },
  ]) {
    it(`Accept=yes (smmapd-accept.socket + smmapd-accept@.service), ${variant.title}: a process per connection`, async () => {
      const port = await freePort();
      const args = [...socketArgs('smmapd-accept.socket', `127.0.0.1:${port}`), ...variant.extra];
      const sa = await activate(args, execStart('smmapd-accept@.service', fx.conf));
      await sleep(300);
      for (let i = 0; i < 10; i++) {
        expect(await query(`127.0.0.1:${port}`, ANSWERS.map(([k]) => k))).toEqual(ANSWERS.map(([, r]) => r));
      }
      // each connection's process exits when its client leaves
      expect(await waitFor(() => ours(fx).length === 0, 5000)).toBe(true);
      expect(sa.hasExited()).toBe(false);
    }, 60_000);
  }

  it('Accept=yes on a unix socket: the connected unix socket on fd 3 is probed and served', async () => {
    const sock = join(fx.dir, 'sa-accept.sock');
    await activate(['-l', sock, '--accept'], execStart('smmapd-accept@.service', fx.conf));
    await sleep(300);
    for (let i = 0; i < 5; i++) expect(await query(`unix:${sock}`, ['fred', 'full'])).toEqual(['OK fred', 'TEMP Over quota']);
    expect(await waitFor(() => ours(fx).length === 0, 5000)).toBe(true);
  }, 30_000);

  it('Accept=yes: concurrent clients each get their own process, none left after', async () => {
    const port = await freePort();
    const sa = await activate(['-l', `127.0.0.1:${port}`, '--accept'], execStart('smmapd-accept@.service', fx.conf));
    await sleep(300);
    const r = await runLoad(`127.0.0.1:${port}`, fx.keys, 4, 3);
    expect(r.errors).toBe(0);
    expect(r.ok + r.notfound + r.temp).toBe(r.requests);
    expect(await waitFor(() => ours(fx).length === 0, 5000)).toBe(true);
    expect(alive(sa.proc.pid!)).toBe(true);
  }, 30_000);
});
