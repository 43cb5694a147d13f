// The SQLite store under the faults an admin causes, through the real daemon with two
// workers: a store restored by rename, one moved away, one locked by another process. Every
// worker must see the same file, a TEMP reply says what failed in a few words (no path),
// and a held lock must not stall a worker for everyone.
import { copyFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ctlOk, sleep, tempConfig } from '../helpers/base';
import { startSmmapd, type Smmapd } from '../helpers/daemon';
import { query } from '../helpers/socketmap';
import { lockStore } from '../helpers/store-lock';


function ctl(conf: string, ...args: string[]): void {
  ctlOk(conf, args);
}

/** `n` fresh connections, one key each (each may land on either worker). */
async function fresh(target: string, key: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(...(await query(target, [key])));
  return out;
}

let cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function daemon(extra: string): Promise<{ env: ReturnType<typeof tempConfig>; d: Smmapd }> {
  const env = tempConfig(`unixhierarchysep: no\nsmmapd_workers: 2\n${extra}`);
  cleanup.push(() => rmSync(env.dir, { recursive: true, force: true }));
  ctl(env.conf, 'mailbox', 'create', 'user.fred');
  const d = await startSmmapd({ conf: env.conf });
  cleanup.push(() => d.stop());
  return { env, d };
}

describe('SQLite store faults, two workers', () => {
  it('a store restored by rename is seen by every worker; one moved away is TEMP without its path', async () => {
    const { env, d } = await daemon('');
    // Every worker opens the store.
    expect(new Set(await fresh(d.target, 'fred', 8))).toEqual(new Set(['OK fred']));
    const otherConf = join(env.dir, 'other.conf');
    writeFileSync(otherConf, `configdirectory: ${env.dir}\nsmmapd_store: ${env.dir}/other.db\nunixhierarchysep: no\n`);
    ctl(otherConf, 'mailbox', 'create', 'user.barney');
    copyFileSync(join(env.dir, 'other.db'), join(env.dir, 'new.db'));
    renameSync(join(env.dir, 'new.db'), env.store);
    rmSync(`${env.store}-wal`, { force: true });
    rmSync(`${env.store}-shm`, { force: true });
    await sleep(50);
    expect(new Set(await fresh(d.target, 'fred', 12))).toEqual(new Set(['NOTFOUND Mailbox does not exist']));
    expect(new Set(await fresh(d.target, 'barney', 12))).toEqual(new Set(['OK barney']));

    renameSync(env.store, join(env.dir, 'gone.db'));
    await sleep(50);
    const gone = await fresh(d.target, 'barney', 12);
    expect(new Set(gone)).toEqual(new Set(['TEMP store unavailable']));
    expect(d.output()).toContain(env.store); // the log names the file
    renameSync(join(env.dir, 'gone.db'), env.store);
    await sleep(1100); // a failed open is retried at most once a second
    expect(new Set(await fresh(d.target, 'barney', 12))).toEqual(new Set(['OK barney']));
  });

  it('a store locked before the first lookup: one lookup waits the busy timeout, the others answer TEMP at once', async () => {
    const { env, d } = await daemon('smmapd_store_busy_timeout: 1500\nsmmapd_cache_size: 0');
    const hold = await lockStore(env.store);
    cleanup.push(() => { hold.kill(); });
    // Ten clients at once: before, each waited the busy timeout in turn (2 workers × 5 × 1.5 s).
    const t = Date.now();
    const got = await Promise.all(Array.from({ length: 10 }, () => query(d.target, ['fred'])));
    const took = Date.now() - t;
    expect(new Set(got.flat())).toEqual(new Set(['TEMP store locked']));
    expect(took).toBeLessThan(4000);
    hold.stdin.end();
    await new Promise((res) => hold.once('exit', res));
    expect(new Set(await fresh(d.target, 'fred', 6))).toEqual(new Set(['OK fred']));
  });
});
