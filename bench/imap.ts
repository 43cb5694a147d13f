// The IMAP side of `npm run bench` (root and Debian's cyrus-imapd needed): a private Cyrus
// 3.6 with 10,000 mailboxes (2,000 users × INBOX and 4 folders), the time `smmapctl sync`
// takes to copy them, and the live imap store under load, with the answer cache off (every
// lookup asks Cyrus) and on, next to the synced SQLite replica on the same keys.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN, createMany, cyrusAvailable, populate, startCyrus } from '../test/helpers/cyrus';
import { runCtl } from '../test/helpers/base';
import { startSmmapd } from '../test/helpers/daemon';

export interface ImapBenchDeps {
  readonly smload: (target: string, keyFile: string, conns: number, secs: number) => { rps: number; p50: number; p99: number; errors: number };
  readonly withDaemon: <T>(conf: string, fn: (target: string) => T | Promise<T>) => Promise<T>;
}

const USERS = 2000;

export async function imapBench(deps: ImapBenchDeps, seconds: number): Promise<void> {
  if (!cyrusAvailable()) {
    console.log('\nimap store: skipped (needs root and Debian cyrus-imapd)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'smmapd-bench-imap-'));
  const cy = await startCyrus({ unixhierarchysep: false });
  try {
    const names: string[] = [];
    for (let u = 0; u < USERS; u++) names.push(`user.u${u}`, `user.u${u}.Sent`, `user.u${u}.Trash`, `user.u${u}.Drafts`, `user.u${u}.lists`);
    createMany(cy, names);
    // u1 over its quota: the message goes in under a large limit, then the limit drops
    populate(cy, [
      { setquota: ['user.u1', '(STORAGE 100000)'] }, { append: ['user.u1', 3000] }, { setquota: ['user.u1', '(STORAGE 1)'] },
      { create: 'shared.pub' }, { setacl: ['shared.pub', 'anyone', 'lrsp'] },
    ]);
    const conf = (name: string, extra: string): string => {
      const file = join(dir, `${name}.conf`);
      writeFileSync(file, `${readFileSync(cy.conf, 'utf8')}\nsmmapd_store: ${join(dir, 'replica.db')}\n` +
        `smmapd_imap_server: 127.0.0.1:${cy.imapPort}\nsmmapd_imap_tls: none\nsmmapd_imap_user: ${ADMIN.user}\n` +
        `smmapd_imap_password: ${ADMIN.password}\n${extra}\n`);
      return file;
    };
    const replica = conf('replica', 'smmapd_backend: sqlite');
    const t0 = Date.now();
    const sync = runCtl(replica, ['sync']);
    if (sync.code !== 0) throw new Error(`sync failed: ${sync.stderr}`);
    console.log(`\nimap store, Cyrus 3.6 with ${names.length + 2} mailboxes (on /dev/shm)`);
    console.log(`smmapctl sync: ${sync.stdout.trim()} (wall ${((Date.now() - t0) / 1000).toFixed(1)} s with process start)`);

    const keyFile = join(dir, 'keys.txt');
    const keys: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const u = (i * 7919) % USERS;
      keys.push(i % 4 === 0 ? `nosuch${u}` : i % 4 === 1 ? `u${u}+Sent` : `u${u}`);
    }
    writeFileSync(keyFile, `${keys.join('\n')}\n`);

    console.log(`${'store'.padEnd(28)} conns       rps   p50_us   p99_us errors`);
    const live = conf('live', 'smmapd_backend: imap\nsmmapd_cache_size: 0');
    await deps.withDaemon(live, async (target) => {
      // cold: the first lookup of a new daemon connects and logs in to Cyrus
      const t = process.hrtime.bigint();
      await firstAnswer(live);
      console.log(`live, cold (spawn, connect and log in to Cyrus, one lookup): ${(Number(process.hrtime.bigint() - t) / 1e6).toFixed(0)} ms`);
      report('live, no cache', 1, deps.smload(target, keyFile, 1, seconds));
      report('live, no cache', 8, deps.smload(target, keyFile, 8, seconds));
    });
    const cached = conf('cached', 'smmapd_backend: imap\nsmmapd_cache_ttl: 300\nsmmapd_negative_cache_ttl: 60');
    await deps.withDaemon(cached, (target) => {
      deps.smload(target, keyFile, 8, 2); // fill the cache
      report('live, cached', 1, deps.smload(target, keyFile, 1, seconds));
      report('live, cached', 8, deps.smload(target, keyFile, 8, seconds));
    });
    await deps.withDaemon(replica, (target) => {
      deps.smload(target, keyFile, 1, 1);
      report('sqlite replica', 1, deps.smload(target, keyFile, 1, seconds));
      report('sqlite replica', 8, deps.smload(target, keyFile, 8, seconds));
    });
  } finally {
    await cy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(name: string, conns: number, l: { rps: number; p50: number; p99: number; errors: number }): void {
  console.log(`${name.padEnd(28)} ${String(conns).padStart(5)} ${l.rps.toFixed(0).padStart(9)} ${l.p50.toFixed(0).padStart(8)} ${l.p99.toFixed(0).padStart(8)} ${String(l.errors).padStart(6)}`);
}

/** Spawn the stdio model on one request and wait for its answer. */
async function firstAnswer(conf: string): Promise<void> {
  const d = await startSmmapd({ model: 'stdio', conf, stdio: ['pipe', 'pipe', 'ignore'] });
  const answered = new Promise<void>((resolve) => d.proc.stdout!.once('data', () => (d.proc.stdin!.end(), resolve())));
  d.proc.stdin!.write('6:any u0,');
  await Promise.race([answered, d.exited().then((c) => Promise.reject(new Error(`smmapd exited ${c} without an answer`)))]);
}
