// Soak under the real Cyrus master(8) with the example conf/cyrus.conf line as shipped
// (-U 250 -T 60, prefork=4): 8 clients for 30 s on one connection each, then 8 clients that
// reconnect for every request (-U recycling) for 10 s. No error, nothing left behind. The
// status protocol and the short master scenarios are in test/integration/cyrus-master.test.ts.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeFixture, type Fixture } from '../helpers/fixture';
import { freePort, isRoot, waitFor } from '../helpers/base';
import { gccAvailable, runLoad, smloadBinary } from '../helpers/load';
import { masterAvailable, startMaster, type RunningMaster } from '../helpers/master';
import { describeWithPeer, firstMissing } from '../helpers/suite';

const missing = firstMissing([
  [isRoot(), 'root (Cyrus runs as cyrus:mail)'],
  [masterAvailable(), 'Cyrus master (/usr/lib/cyrus/bin/master, Debian cyrus-imapd)'],
  [gccAvailable(), 'gcc (for bench/smload.c)'],
]);

describeWithPeer('the real Cyrus master(8) under load', missing, () => {
  let fx: Fixture;
  let m: RunningMaster | null = null;
  beforeAll(() => {
    fx = makeFixture();
  });
  afterAll(async () => {
    await m?.stop();
    rmSync(fx.dir, { recursive: true, force: true });
  });

  it('the example conf/cyrus.conf as shipped (-U 250 -T 60, prefork=4): 8 clients for 30 s, then 8 reconnecting clients for 10 s; no error, nothing left', async () => {
    smloadBinary();
    const port = await freePort();
    const master = await startMaster({ conf: fx.conf, dir: fx.dir, listen: `127.0.0.1:${port}` });
    m = master;
    await waitFor(() => master.workers().length >= 4, 10_000);
    const seen = new Set<number>();
    let most = 0;
    const sample = (): void => {
      const w = master.workers();
      most = Math.max(most, w.length);
      for (const p of w) seen.add(p);
    };
    let sampler = setInterval(sample, 250);
    const steady = await runLoad(`127.0.0.1:${port}`, fx.keys, 8, 30).finally(() => clearInterval(sampler));
    const steadyMost = most;
    const steadySeen = seen.size;
    sampler = setInterval(sample, 250);
    const churn = await runLoad(`127.0.0.1:${port}`, fx.keys, 8, 10, true).finally(() => clearInterval(sampler));
    console.log(`cyrus master, 8 clients x 30 s (one connection each): ${steady.line}; workers at once: ${steadyMost}, seen: ${steadySeen}`);
    console.log(`cyrus master, 8 clients x 10 s (a new connection per request, -U 250 recycling): ${churn.line}; workers at once: ${most}, seen in all: ${seen.size}`);
    for (const r of [steady, churn]) {
      expect(r.errors).toBe(0);
      expect(r.other + r.perm).toBe(0);
      expect(r.ok + r.notfound + r.temp).toBe(r.requests);
    }
    expect(steadyMost).toBeGreaterThanOrEqual(8);
    m = null;
    expect(await master.stop(), 'workers left after the master exited').toEqual([]);
    console.log('cyrus master: 0 workers left after the master exited');
  }, 120_000);
});
