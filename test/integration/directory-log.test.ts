// What a directory says reaches the log escaped and bounded (issue 13): a pgsql map whose
// query casts the key fails on every key a client sends; before, each request wrote one
// line with the server's message as it was, so 10,000 requests wrote 10,000 lines, and a key
// holding a newline wrote a second, forged line. Real PostgreSQL, real daemon.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ctlOk, freePort, isRoot } from '../helpers/base';
import { startSmmapd, type Smmapd } from '../helpers/daemon';
import { PGBIN, seedPg, startPg, stopPg, type Pg } from '../helpers/directories';
import { describeWithPeer } from '../helpers/suite';
import { netstring, parseReplies } from '../helpers/socketmap';
import { existsSync } from 'node:fs';

const missing = PGBIN === '' || !existsSync(join(PGBIN, 'initdb')) ? 'PostgreSQL (initdb)' : isRoot() ? null : 'root (to run PostgreSQL as its user)';

/** Send every frame on one connection, read as many replies. */
function pipeline(port: number, frames: Buffer[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf: Buffer = Buffer.alloc(0);
    const replies: string[] = [];
    const t = setTimeout(() => (sock.destroy(), reject(new Error(`${replies.length} replies of ${frames.length}`))), 120_000);
    sock.on('error', reject);
    sock.on('data', (d: Buffer) => {
      const r = parseReplies(Buffer.concat([buf, d]));
      buf = r.rest;
      replies.push(...r.replies.map((x) => x.toString()));
      if (replies.length === frames.length) {
        clearTimeout(t);
        sock.destroy();
        resolve(replies);
      }
    });
    sock.write(Buffer.concat(frames));
  });
}

describeWithPeer('directory errors in the log (PostgreSQL)', missing, () => {
  let dir: string;
  let pg: Pg;
  let d: Smmapd;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smmapd-dirlog-'));
    chmodSync(dir, 0o755);
    const port = await freePort();
    pg = await startPg(join(dir, 'pg'), port);
    seedPg(port);
    writeFileSync(
      join(dir, 'typed.cf'),
      `hosts = inet:127.0.0.1:${port}\nuser = postgres\ndbname = postgres\nquery = SELECT goto FROM aliases WHERE length(alias) = '%s'::int\n`,
    );
    chmodSync(join(dir, 'typed.cf'), 0o600);
    writeFileSync(join(dir, 'smmapd.conf'), `configdirectory: ${dir}\nsmmapd_store: ${dir}/smmapd.db\nsmmapd_workers: 1\nsmmapd_map_typed: pgsql:${dir}/typed.cf\n`);
    ctlOk(join(dir, 'smmapd.conf'), ['mailbox', 'create', 'user/fred']);
    d = await startSmmapd({ conf: join(dir, 'smmapd.conf') });
  }, 120_000);
  afterAll(async () => {
    await d?.stop();
    if (pg) stopPg(pg);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('10,001 failing lookups, one with a newline in its key: TEMP each, a few escaped lines and one count', async () => {
    // the forged key first, alone: its line is among the few logged
    const replies = await pipeline(d.port, [netstring('typed x\nsmmapd[1]: error: FORGED by a client')]);
    replies.push(...(await pipeline(d.port, Array.from({ length: 10_000 }, (_, i) => netstring(`typed k${i}`)))));
    // (on a loaded machine some wait past smmapd_maps_timeout in the pool's bounded queue, or
    // find it full: TEMP too, never anything else)
    const counts = new Map<string, number>();
    for (const r of replies) counts.set(r.replace(/\d+/g, 'N'), (counts.get(r.replace(/\d+/g, 'N')) ?? 0) + 1);
    expect([...counts.keys()].filter((r) => !/^TEMP (pgsql query failed|pgsql unavailable: (timed out( \(queued\))?|N lookups queued)|map typed lookup timed out)$/.test(r)), JSON.stringify([...counts])).toEqual([]);
    expect(counts.get('TEMP pgsql query failed') ?? 0, JSON.stringify([...counts])).toBeGreaterThan(200);
    expect(await d.stop()).toBe(0); // the window's count is written at exit
    const out = d.output();
    const lines = out.split('\n').filter((l) => l !== '');
    // every line is the daemon's own: `smmapd[pid]: level: ...`
    for (const l of lines) expect(l).toMatch(/^smmapd\[\d+\]: (error|warning|notice|info): /);
    const failed = lines.filter((l) => l.includes('query failed: ') && !l.includes(' not logged'));
    expect(failed.length, out).toBeLessThanOrEqual(5);
    // the forged key is in one line, escaped
    expect(failed.filter((l) => l.includes('"x\\x0asmmapd[1]: error: FORGED by a client"')), out).toHaveLength(1);
    expect(out).toMatch(/map typed: pgsql: inet:127\.0\.0\.1:\d+: query failed: \d{3,} more in the last 60 s not logged/);
    expect(Buffer.byteLength(out)).toBeLessThan(8192);
  }, 180_000);
});
