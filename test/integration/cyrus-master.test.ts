// smmapd as a SERVICE of Cyrus master(8): the status protocol byte for byte (a stand-in
// master that records it), then the real master (Debian's cyrus-imapd) running the example
// conf/cyrus.conf line: Postfix's postmap and concurrent load through it, -U recycling, -T
// idle exit, one connection per worker at a time (the accept gate), signals, nothing left.
// The 40 s soak under the shipped line is in the load tier (test/load/cyrus-master-soak.test.ts).
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { alive, freePort, haveCommand, isRoot, sleep, SMMAPD, waitFor } from '../helpers/base';
import { ANSWERS, ctl, makeFixture, type Fixture } from '../helpers/fixture';
import { gccAvailable, runLoad } from '../helpers/load';
import { fakeMaster, masterAvailable, startMaster, type FakeMasterRun, type RunningMaster } from '../helpers/master';
import { postfixAvailable, postmapQuery } from '../helpers/postfix';
import { describeWithPeer, firstMissing } from '../helpers/suite';
import { dial, netstring, parseReplies, query } from '../helpers/socketmap';

const AVAILABLE = 1;
const UNAVAILABLE = 2;
const CONNECTION = 3;

/** smmapd -C conf ...args under the stand-in master in `scenario`. */
const fakeRun = (scenario: string, conf: string, args: string[]): FakeMasterRun => fakeMaster(scenario, [process.execPath, SMMAPD, '-C', conf, ...args]);

const msgs = (run: FakeMasterRun): number[] => run.messages.map(([m]) => m);

let fx: Fixture;
beforeAll(() => {
  fx = makeFixture();
});
afterAll(() => {
  rmSync(fx.dir, { recursive: true, force: true });
});

describeWithPeer('status protocol (stand-in master)', firstMissing([[haveCommand('python3'), 'python3']]), () => {
  it('-U 3: UNAVAILABLE, CONNECTION, AVAILABLE per connection; exits after the third, no AVAILABLE after it', () => {
    const run = fakeRun('uses', fx.conf, ['-U', '3', '-T', '0']);
    expect(run.replies).toEqual(['OK fred', 'OK fred', 'OK fred']);
    expect(msgs(run)).toEqual([UNAVAILABLE, CONNECTION, AVAILABLE, UNAVAILABLE, CONNECTION, AVAILABLE, UNAVAILABLE, CONNECTION]);
    // every message carries the worker's own pid
    expect(new Set(run.messages.map(([, pid]) => pid))).toEqual(new Set([run.pid]));
    expect(run.exit).toBe(0);
  });

  it('the deny list is matched against the cyrus.conf service name (CYRUS_SERVICE smmap) unless smmapd_service_name is set', () => {
    const own = makeFixture();
    const named = makeFixture('smmapd_service_name: smmapd');
    try {
      for (const f of [own, named]) ctl(f.conf, ['deny', 'add', 'fred', '--services', 'smmap', '--message', 'Closed for smmap']);
      expect(fakeRun('uses', own.conf, ['-U', '3', '-T', '0']).replies).toEqual(Array(3).fill('NOTFOUND Closed for smmap'));
      expect(fakeRun('uses', named.conf, ['-U', '3', '-T', '0']).replies).toEqual(Array(3).fill('OK fred'));
    } finally {
      for (const f of [own, named]) rmSync(f.dir, { recursive: true, force: true });
    }
  });

  it('-T 1: once served, an idle worker says UNAVAILABLE and exits between T and 2T', () => {
    const run = fakeRun('idle', fx.conf, ['-T', '1']);
    expect(msgs(run)).toEqual([UNAVAILABLE, CONNECTION, AVAILABLE, UNAVAILABLE]);
    expect(run.exit).toBe(0);
    expect(run.exit_after).toBeGreaterThanOrEqual(0.9);
    expect(run.exit_after).toBeLessThan(3);
  });

  it('serves one connection at a time: a second client waits in the listen queue until the first leaves', () => {
    const run = fakeRun('gate', fx.conf, ['-T', '0']);
    expect(run.a).toBe('OK fred');
    expect(run.b_while_a_open).toBe('TIMEOUT'); // not accepted while busy
    expect(run.messages_while_busy).toBe(2); // UNAVAILABLE, CONNECTION: nothing more while busy
    expect(run.a_again).toBe('OK fred');
    expect(run.b_after_a_closed).toBe('NOTFOUND Mailbox does not exist');
    expect(msgs(run)).toEqual([UNAVAILABLE, CONNECTION, AVAILABLE, UNAVAILABLE, CONNECTION, AVAILABLE, UNAVAILABLE]);
    expect(run.exit).toBe(0);
  });

  it('SIGTERM while ready: UNAVAILABLE, exit 0', () => {
    const run = fakeRun('term-idle', fx.conf, []);
    expect(msgs(run)).toEqual([UNAVAILABLE]);
    expect(run.exit).toBe(0);
  });

  it('SIGTERM while a client holds an idle connection: its answers are out, it is closed, exit 0 promptly', () => {
    const run = fakeRun('term-busy', fx.conf, []);
    expect(run.a).toBe('OK fred');
    expect(run.a_after_term).toBeNull(); // closed, not left hanging
    expect(msgs(run)).toEqual([UNAVAILABLE, CONNECTION]); // busy already: no second UNAVAILABLE
    expect(run.exit).toBe(0);
    expect(run.exit_after).toBeLessThan(3);
  });

  it('SIGHUP between connections: exits, telling the master first', () => {
    const run = fakeRun('hup-idle', fx.conf, []);
    expect(msgs(run)).toEqual([UNAVAILABLE, CONNECTION, AVAILABLE, UNAVAILABLE]);
    expect(run.exit).toBe(0);
  });

  it('a master that dies without a word (SIGKILL): the idle worker notices and exits', async () => {
    const run = fakeRun('orphan', fx.conf, ['-T', '0']);
    expect(run.replies).toEqual(['OK fred']);
    expect(await waitFor(() => !alive(run.pid), 8000), `worker ${run.pid} still running`).toBe(true);
  });

  it('a worker that cannot start (bad -C) still says UNAVAILABLE, so the master does not count it against the service', () => {
    const run = fakeRun('bad-config', join(fx.dir, 'no-such.conf'), []);
    expect(msgs(run)).toEqual([UNAVAILABLE]);
    expect(run.exit).toBe(78);
  });
});

const missing = firstMissing([
  [isRoot(), 'root (Cyrus runs as cyrus:mail)'],
  [masterAvailable(), 'Cyrus master (/usr/lib/cyrus/bin/master, Debian cyrus-imapd)'],
  [postfixAvailable(), 'Postfix postmap'],
  [gccAvailable(), 'gcc (for bench/smload.c)'],
]);

describeWithPeer('the real Cyrus master(8)', missing, () => {
  let m: RunningMaster | null = null;
  afterAll(async () => {
    await m?.stop();
  });

  async function withMaster(o: Omit<Parameters<typeof startMaster>[0], 'conf' | 'dir'>): Promise<RunningMaster> {
    if (m !== null) await stopMaster(); // a failed test left one running
    m = await startMaster({ conf: fx.conf, dir: fx.dir, ...o });
    return m;
  }
  async function stopMaster(): Promise<void> {
    const left = await m!.stop();
    m = null;
    expect(left, 'workers left after the master exited').toEqual([]);
  }

  it('answers postmap -q and a netstring client; recycles at -U; idle workers exit after -T; none left', async () => {
    const port = await freePort();
    const master = await withMaster({ listen: `127.0.0.1:${port}`, limits: '-U 5 -T 3', prefork: 1, maxchild: 4 });
    const map = `socketmap:inet:127.0.0.1:${port}:smmapd`;
    expect(postmapQuery(map, 'fred')).toEqual({ status: 0, out: 'fred' });
    expect(postmapQuery(map, 'nosuch')).toEqual({ status: 1, out: '' });
    expect(postmapQuery(map, 'full').out).toContain('temporary error: Over quota');
    expect(postmapQuery(map, '+shared.nopost').out).toContain('permanent error: Permission denied');
    expect(await query(`127.0.0.1:${port}`, ANSWERS.map(([k]) => k))).toEqual(ANSWERS.map(([, r]) => r));

    // 40 connections one after another: -U 5 means at least 8 workers served them, each
    // still alive at some sample (a worker exits right after its fifth).
    const seen = new Set<number>(master.workers());
    for (let i = 0; i < 40; i++) {
      expect(await query(`127.0.0.1:${port}`, ['fred'])).toEqual(['OK fred']);
      for (const p of master.workers()) seen.add(p);
    }
    expect(seen.size).toBeGreaterThanOrEqual(8);

    // 4 concurrent clients: workers say UNAVAILABLE, so the master forks more (up to 4).
    let during = 0;
    const load = runLoad(`127.0.0.1:${port}`, fx.keys, 4, 5);
    const sampler = setInterval(() => (during = Math.max(during, master.workers().length)), 200);
    const r = await load.finally(() => clearInterval(sampler));
    console.log(`cyrus master -U 5, 4 clients x 5 s: ${r.line}; workers at once: ${during}; recycled workers seen: ${seen.size}`);
    expect(r.errors).toBe(0);
    expect(r.other + r.perm).toBe(0);
    expect(r.ok + r.notfound + r.temp).toBe(r.requests);
    expect(during).toBeGreaterThanOrEqual(2);
    expect(during).toBeLessThanOrEqual(4);

    // -T 3 (so 3 to 6 s): only the fresh prefork worker (which has served nobody) remains.
    expect(await waitFor(() => master.workers().length <= 1, 12_000), `idle workers: ${master.workers().length}`).toBe(true);
    await stopMaster();
  }, 90_000);

  it('unix listen socket: postmap -q through socketmap:unix and load with no error', async () => {
    const sock = join(fx.dir, 'smmap.sock');
    const master = await withMaster({ listen: sock, limits: '-U 50 -T 3', prefork: 1, maxchild: 3 });
    await waitFor(() => spawnSync('test', ['-S', sock]).status === 0, 5000);
    const map = `socketmap:unix:${sock}:smmapd`;
    expect(postmapQuery(map, 'fred')).toEqual({ status: 0, out: 'fred' });
    expect(postmapQuery(map, 'nosuch')).toEqual({ status: 1, out: '' });
    const r = await runLoad(`unix:${sock}`, fx.keys, 3, 3);
    expect(r.errors).toBe(0);
    expect(r.ok + r.notfound + r.temp).toBe(r.requests);
    expect(master.workers().length).toBeGreaterThanOrEqual(1);
    await stopMaster();
  }, 60_000);

  it('maxchild=1: a second client waits (not refused) while the worker is busy, then the same worker serves it', async () => {
    const port = await freePort();
    const master = await withMaster({ listen: `127.0.0.1:${port}`, limits: '-U 250 -T 0', prefork: 1, maxchild: 1 });
    const a = dial(`127.0.0.1:${port}`);
    await new Promise((r) => a.once('connect', r));
    const replies = (s: ReturnType<typeof dial>): Promise<string> => new Promise((resolve) => {
      let buf = Buffer.alloc(0);
      const on = (d: Buffer): void => {
        buf = Buffer.concat([buf, d]);
        const { replies: got } = parseReplies(buf);
        if (got.length > 0) {
          s.off('data', on);
          resolve(got[0]!.toString());
        }
      };
      s.on('data', on);
    });
    a.write(netstring('smmapd fred'));
    expect(await replies(a)).toBe('OK fred');
    const workerA = master.workers();
    expect(workerA.length).toBe(1);
    const b = dial(`127.0.0.1:${port}`);
    let bClosed = false;
    b.on('close', () => (bClosed = true));
    b.on('error', () => undefined);
    b.write(netstring('smmapd nosuch'));
    const bReply = replies(b);
    const early = await Promise.race([bReply, sleep(1000).then(() => 'none yet')]);
    expect(early).toBe('none yet');
    expect(bClosed).toBe(false); // waiting, not refused
    a.end();
    expect(await bReply).toBe('NOTFOUND Mailbox does not exist');
    expect(master.workers()).toEqual(workerA);
    b.destroy();
    await stopMaster();
  }, 60_000);

  it('master shutdown is not held up by a client that keeps its connection open', async () => {
    const port = await freePort();
    const master = await withMaster({ listen: `127.0.0.1:${port}`, limits: '-U 250 -T 60', prefork: 2, maxchild: 4 });
    const a = dial(`127.0.0.1:${port}`);
    a.on('error', () => undefined);
    let closed = false;
    a.on('close', () => (closed = true));
    a.resume();
    a.write(netstring('smmapd fred'));
    await sleep(500);
    const t0 = Date.now();
    process.kill(master.pid, 'SIGTERM');
    expect(await waitFor(() => master.workers().length === 0, 8000)).toBe(true);
    const took = Date.now() - t0;
    expect(took).toBeLessThan(5000);
    expect(await waitFor(() => closed, 2000)).toBe(true);
    await stopMaster();
  }, 60_000);

  it('master SIGHUP (reload): workers go and come back, clients keep being answered', async () => {
    const port = await freePort();
    const master = await withMaster({ listen: `127.0.0.1:${port}`, limits: '-U 250 -T 60', prefork: 2, maxchild: 6 });
    await waitFor(() => master.workers().length >= 2, 10_000);
    const before = new Set(master.workers());
    const load = runLoad(`127.0.0.1:${port}`, fx.keys, 2, 4, true);
    await sleep(1000);
    process.kill(master.pid, 'SIGHUP');
    const r = await load;
    expect(r.errors).toBe(0);
    expect(r.ok + r.notfound + r.temp).toBe(r.requests);
    expect(await waitFor(() => master.workers().length >= 1, 10_000)).toBe(true);
    // the workers that were running before the reload have gone
    expect(await waitFor(() => master.workers().every((p) => !before.has(p)), 10_000)).toBe(true);
    await stopMaster();
  }, 60_000);
});
