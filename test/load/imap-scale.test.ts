// Figures for the IMAP side at size: `smmapctl sync` of 10,000 mailboxes (target: under 60 s on
// the project machine), and the live store's cold and warm lookup latency and lookups per second
// through its session pool, measured through the daemon over sockets. Cyrus runs on /dev/shm:
// creating 10,000 mailboxes on disk takes Cyrus over two minutes, on tmpfs a few seconds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMany, cyrusAvailable, populate, smmapdConf, startCyrus, type Cyrus } from '../helpers/cyrus';
import { buildOnce, ctlOk } from '../helpers/base';
import { startSmmapd } from '../helpers/daemon';
import { query } from '../helpers/socketmap';
import { describeWithPeer } from '../helpers/suite';

const USERS = 2000; // × (INBOX + 4 folders) = 10,000 mailboxes

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describeWithPeer('IMAP at 10,000 mailboxes', cyrusAvailable() ? null : 'Cyrus 3.6 (cyrus-imapd, as root)', () => {
  let cy: Cyrus;
  let dir: string;

  beforeAll(async () => {
    buildOnce();
    dir = mkdtempSync(join(tmpdir(), 'smmapd-scale-'));
    cy = await startCyrus({ unixhierarchysep: false });
    const names: string[] = [];
    for (let u = 0; u < USERS; u++) {
      names.push(`user.u${u}`, `user.u${u}.Sent`, `user.u${u}.Trash`, `user.u${u}.Drafts`, `user.u${u}.a^b`);
    }
    createMany(cy, names);
    populate(cy, [
      { setquota: ['user.u1', '(STORAGE 100000)'] },
      { append: ['user.u1', 3000] },
      { setquota: ['user.u1', '(STORAGE 1)'] },
      { setquota: ['user.u2.Sent', '(MESSAGE 10)'] },
      { create: 'shared.pub' },
      { setacl: ['shared.pub', 'anyone', 'lrsp'] },
    ]);
  }, 300_000);

  afterAll(async () => {
    await cy?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // 10,000 + shared.pub + shared (Cyrus creates the parent of a new shared folder).
  it('smmapctl sync copies 10,000 mailboxes in under 60 s, and the replica answers', async () => {
    const replica = smmapdConf(cy, dir, 'replica', 'sqlite');
    const t0 = performance.now();
    const out = ctlOk(replica, ['sync', '--connections', '4']);
    const secs = (performance.now() - t0) / 1000;
    console.log(`sync: ${out.join(' ')} (wall ${secs.toFixed(1)} s, process start included)`);
    expect(out.join('\n')).toMatch(/^synced 10002 mailboxes, 2 quota roots, 10002 ACLs in /);
    expect(secs).toBeLessThan(60);
    const d = await startSmmapd({ conf: replica });
    try {
      expect(await query(d.target, ['u0', 'u1', 'u2+Sent', 'u1999+a^b', 'u2000', '+shared.pub'])).toEqual([
        'OK u0', 'TEMP Over quota', 'OK u2+Sent', 'OK u1999+a^b', 'NOTFOUND Mailbox does not exist', 'OK +shared.pub',
      ]);
    } finally {
      await d.stop();
    }
  }, 120_000);

  it('live store: cold and warm latency, lookups per second through the pool', async () => {
    const d = await startSmmapd({ conf: smmapdConf(cy, dir, 'live', 'imap') });
    try {
      let t0 = performance.now();
      expect(await query(d.target, ['u0'])).toEqual(['OK u0']);
      const cold = performance.now() - t0;

      // Warm, one client, one connection, one key after another.
      const keys = Array.from({ length: 500 }, (_, i) => `u${(i * 7) % USERS}+Sent`);
      const lat: number[] = [];
      for (let i = 0; i < 200; i++) {
        t0 = performance.now();
        await query(d.target, [keys[i]!]);
        lat.push(performance.now() - t0);
      }
      t0 = performance.now();
      const seq = await query(d.target, keys);
      const perKeySeq = (performance.now() - t0) / keys.length;
      expect(seq.every((r) => r.startsWith('OK '))).toBe(true);

      // Throughput: 16 clients, each its own connection, for 3 s.
      let n = 0;
      const end = performance.now() + 3000;
      await Promise.all(Array.from({ length: 16 }, async (_, c) => {
        while (performance.now() < end) {
          const batch = keys.slice((c * 10) % 400, (c * 10) % 400 + 20);
          const got = await query(d.target, batch);
          n += got.filter((r) => r.startsWith('OK ')).length;
        }
      }));
      const rate = n / 3;
      console.log(`live: cold first lookup ${cold.toFixed(1)} ms (connect + login + lookup); warm ${median(lat).toFixed(2)} ms median ` +
        `(new client connection each), ${perKeySeq.toFixed(2)} ms per key on one connection; ${rate.toFixed(0)} lookups/s with 16 clients, pool of 4`);
      expect(rate).toBeGreaterThan(50);
    } finally {
      await d.stop();
    }
  }, 120_000);
});
