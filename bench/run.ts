// npm run bench: provision a store of BENCH_USERS users (default 100,000) through
// `smmapctl batch`, start the listener, drive it with the C load generator (bench/smload.c)
// at 1 and 8 connections over a mix of hits, misses, plus-addresses, over-quota and shared
// keys, and time the stdio model from spawn to first answer (BENCH_ONLY=startup: that alone).
// The policy service (smmapd --policy) gets the same keys as Postfix-like RCPT requests at 1
// and 8 connections (smload with SMLOAD_POLICY=1; BENCH_ONLY=policy: that alone, BENCH_POLICY=0: skip).
// The cost of metrics: BENCH_ONLY=metrics (alternating rounds without and with smmapd_metrics_listen);
// what busy polling buys: BENCH_ONLY=busypoll (smmapd_busy_poll 0 against the default).
// PEER=host:port runs the same load against another socketmap server (Cyrus's smmapd:
// bench/cyrus-peer.sh loads the same mailboxes into a private Cyrus) and prints the ratios.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runCtl, SMMAPD } from '../test/helpers/base';
import { smloadBinary } from '../test/helpers/load';
import { startSmmapd } from '../test/helpers/daemon';
import { batchLines, benchKeys, dataset } from './dataset';
import { imapBench } from './imap';
import { mapsBench } from './maps';

const USERS = Number(process.env.BENCH_USERS ?? 100_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const PEER = process.env.PEER ?? '';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface Load {
  rps: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  requests: number;
  tally: string;
}

/** The round with the median throughput (its latencies belong to the same run). */
function medianLoad(xs: Load[]): Load {
  return [...xs].sort((a, b) => a.rps - b.rps)[Math.floor(xs.length / 2)]!;
}

function smload(bin: string, target: string, keyFile: string, conns: number, secs: number, policy = false): Load {
  const env = { ...process.env };
  if (policy) env.SMLOAD_POLICY = '1';
  else delete env.SMLOAD_POLICY;
  const out = execFileSync(bin, [target, 'smmapd', keyFile, String(conns), String(secs)], { encoding: 'utf8', env });
  const f = (k: string): number => Number(new RegExp(`${k}=([0-9.]+)`).exec(out)?.[1] ?? NaN);
  return {
    rps: f('rps'), p50: f('p50_us'), p99: f('p99_us'), max: f('max_us'), errors: f('errors'), requests: f('requests'),
    tally: `ok=${f('ok')} notfound=${f('notfound')} temp=${f('temp')} perm=${f('perm')} other=${f('other')}`,
  };
}

/**
 * Spawn-to-first-answer of the stdio model (what inetd and systemd Accept=yes pay per
 * connection) against spawn-to-exit of a bare `node -e 0`, in interleaved runs so that both
 * see the same machine; medians in ms.
 */
async function stdioStartup(conf: string, runs: number): Promise<{ smmapd: number; bare: number }> {
  const once = (args: string[], input: string | null): Promise<number> =>
    new Promise((res, rej) => {
      const t0 = process.hrtime.bigint();
      const p = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'ignore'] });
      const done = (): void => res(Number(process.hrtime.bigint() - t0) / 1e6);
      if (input === null) {
        p.on('exit', done);
      } else {
        p.stdout!.once('data', () => (done(), p.stdin!.end()));
        p.stdin!.write(input);
      }
      p.on('error', rej);
    });
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const a: number[] = [];
  const b: number[] = [];
  await once([SMMAPD, '-C', conf], '7:any u10,'); // the page cache, not the first run, decides
  for (let i = 0; i < runs; i++) {
    b.push(await once(['-e', '0'], null));
    a.push(await once([SMMAPD, '-C', conf], '7:any u10,'));
  }
  return { smmapd: median(a), bare: median(b) };
}

function row(name: string, conns: number, l: Load): string {
  return `${name.padEnd(28)} ${String(conns).padStart(5)} ${l.rps.toFixed(0).padStart(9)} ${l.p50.toFixed(0).padStart(8)} ${l.p99.toFixed(0).padStart(8)} ${String(l.errors).padStart(6)}   ${l.tally}`;
}

async function withDaemon<T>(conf: string, fn: (target: string) => T | Promise<T>, extra: readonly string[] = []): Promise<T> {
  const d = await startSmmapd({ conf, args: extra, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    return await fn(d.target);
  } finally {
    await d.stop();
  }
}

/**
 * smmapd --policy at 1 and 8 connections, next to the socketmap without cache (the policy
 * service has none) on the same keys, in alternating rounds (BENCH_POLICY=0 skips it;
 * BENCH_ONLY=policy runs it alone).
 */
async function policySection(confNoCache: string, keyFile: string): Promise<void> {
  const bin = smloadBinary();
  console.log(`\npolicy service (smmapd --policy), ${ROUNDS} alternating rounds of ${SECONDS} s, medians: Postfix-like RCPT requests`);
  console.log('(31 attributes, SIZE= from 1 KiB to 16 MiB) over the same keys; tally ok=DUNNO notfound=550 temp=452');
  console.log(`${'server'.padEnd(28)} conns       rps   p50_us   p99_us errors`);
  await withDaemon(confNoCache, (policyTarget) => withDaemon(confNoCache, (mapTarget) => {
    smload(bin, policyTarget, keyFile, 1, 1, true); // warm-up
    smload(bin, mapTarget, keyFile, 1, 1);
    for (const conns of [1, 8]) {
      const pol: Load[] = [];
      const map: Load[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        pol.push(smload(bin, policyTarget, keyFile, conns, SECONDS, true));
        map.push(smload(bin, mapTarget, keyFile, conns, SECONDS));
      }
      const p = medianLoad(pol);
      const m = medianLoad(map);
      console.log(row('smmapd --policy', conns, p));
      console.log(row('smmapd socketmap, no cache', conns, m));
    }
  }), ['--policy']);
}

/** One side of an A/B section: a label and the configuration lines added to the base. */
interface Variant {
  readonly label: string;
  readonly lines: string;
}

/**
 * The same load against two daemons that differ by a few configuration lines, in alternating
 * rounds, medians, for the socketmap and the policy service; `eachRound` runs after each pair
 * of rounds (a scrape).
 */
async function abSection(title: string, dir: string, base: string, keyFile: string, a: Variant, b: Variant, eachRound: () => Promise<void> = async () => {}): Promise<void> {
  const bin = smloadBinary();
  const confA = join(dir, 'a.conf');
  const confB = join(dir, 'b.conf');
  writeFileSync(confA, base + a.lines);
  writeFileSync(confB, base + b.lines);
  console.log(`\n${title}, ${ROUNDS} alternating rounds of ${SECONDS} s, medians`);
  console.log(`${'server'.padEnd(28)} conns       rps   p50_us   p99_us errors`);
  for (const policy of [false, true]) {
    const extra = policy ? ['--policy'] : [];
    await withDaemon(confA, (targetA) => withDaemon(confB, async (targetB) => {
      smload(bin, targetA, keyFile, 1, 1, policy); // warm-up
      smload(bin, targetB, keyFile, 1, 1, policy);
      for (const conns of [1, 8]) {
        const la: Load[] = [];
        const lb: Load[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          la.push(smload(bin, targetA, keyFile, conns, SECONDS, policy));
          lb.push(smload(bin, targetB, keyFile, conns, SECONDS, policy));
          await eachRound();
        }
        const x = medianLoad(la);
        const y = medianLoad(lb);
        const what = policy ? 'smmapd --policy' : 'smmapd';
        console.log(row(`${what}, ${a.label}`, conns, x));
        console.log(row(`${what}, ${b.label}`, conns, y));
        const ratios = la.map((l, i) => lb[i]!.rps / l.rps).sort((p, q) => p - q);
        console.log(`ratio ${b.label}/${a.label} at ${conns} conn: throughput ${(y.rps / x.rps).toFixed(3)}x (median of rounds' ratios ${ratios[Math.floor(ratios.length / 2)]!.toFixed(3)}x); p99 ${y.p99.toFixed(0)} vs ${x.p99.toFixed(0)} us`);
      }
    }, extra), extra);
  }
}

/**
 * What counting costs on the request path: without and with smmapd_metrics_listen, scraped
 * once per round as Prometheus would (BENCH_ONLY=metrics; BENCH_METRICS=0 skips it in the full run).
 */
async function metricsSection(base: string, dir: string, keyFile: string): Promise<void> {
  const mport = await freePort();
  await abSection('metrics: the same load without and with smmapd_metrics_listen', dir, base, keyFile,
    { label: 'metrics off', lines: '' }, { label: 'metrics on', lines: `smmapd_metrics_listen: inet:127.0.0.1:${mport}\n` },
    async () => {
      const scrape = await fetch(`http://127.0.0.1:${mport}/metrics`);
      if (scrape.status !== 200) throw new Error(`scrape: HTTP ${scrape.status}`);
      await scrape.text();
    });
}

/** What smmapd_busy_poll buys the Cyrus path, no answer cache: off against the default (BENCH_ONLY=busypoll). */
async function busyPollSection(base: string, dir: string, keyFile: string): Promise<void> {
  await abSection('busy polling: smmapd_busy_poll 0 and 200 (the default), no answer cache', dir, `${base}smmapd_cache_size: 0\n`, keyFile,
    { label: 'busy_poll 0', lines: 'smmapd_busy_poll: 0\n' }, { label: 'busy_poll 200', lines: 'smmapd_busy_poll: 200\n' });
}

async function main(): Promise<void> {
  if (process.env.BENCH_ONLY === 'maps' || process.env.BENCH_ONLY === 'sockmapd') {
    await mapsBench({ smloadBin: smloadBinary(), withDaemon, rounds: ROUNDS }, SECONDS);
    return;
  }
  if (process.env.BENCH_ONLY === 'imap') {
    await imapBench({ smload: (t, k, c, secs) => smload(smloadBinary(), t, k, c, secs), withDaemon }, SECONDS);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'smmapd-bench-'));
  if (process.env.BENCH_ONLY === 'startup') {
    // the start-up probe alone, over a store of a few mailboxes
    const conf = join(dir, 'smmapd.conf');
    writeFileSync(conf, `configdirectory: ${dir}\nsmmapd_store: ${join(dir, 'smmapd.db')}\nunixhierarchysep: no\n`);
    runCtl(conf, ['batch'], 'mailbox create user.u1\nmailbox create user.u10\n');
    const runs = Number(process.env.BENCH_STARTUP_RUNS ?? 31);
    const s = await stdioStartup(conf, runs);
    console.log(`stdio model, spawn to first answer (medians of ${runs} interleaved runs): ${s.smmapd.toFixed(1)} ms; bare node -e 0: ${s.bare.toFixed(1)} ms; ratio ${(s.smmapd / s.bare).toFixed(2)}x`);
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  try {
    const store = join(dir, 'smmapd.db');
    const base = `configdirectory: ${dir}\nsmmapd_store: ${store}\nunixhierarchysep: no\n`;
    const conf = join(dir, 'smmapd.conf');
    const confNoCache = join(dir, 'nocache.conf');
    const confOne = join(dir, 'one.conf');
    writeFileSync(conf, base);
    writeFileSync(confNoCache, `${base}smmapd_cache_size: 0\n`);
    writeFileSync(confOne, `${base}smmapd_workers: 1\nsmmapd_cache_size: 0\n`);
    const batch = join(dir, 'dataset.txt');
    const lines = batchLines(dataset(USERS));
    writeFileSync(batch, `${lines.join('\n')}\n`);
    const t = Date.now();
    const prov = runCtl(conf, ['batch', batch]);
    if (prov.code !== 0) throw new Error(`provisioning failed: ${prov.stderr}`);
    console.log(`provisioned ${USERS} users (${lines.length} batch lines) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const keyFile = join(dir, 'keys.txt');
    writeFileSync(keyFile, `${benchKeys(USERS, 20_000).join('\n')}\n`);
    const bin = smloadBinary();

    if (process.env.BENCH_ONLY === 'policy') {
      await policySection(confNoCache, keyFile);
      return;
    }
    if (process.env.BENCH_ONLY === 'metrics') {
      await metricsSection(base, dir, keyFile);
      return;
    }
    if (process.env.BENCH_ONLY === 'busypoll') {
      await busyPollSection(base, dir, keyFile);
      return;
    }
    console.log(`\nload: ${SECONDS} s each, closed loop, keys: 50% hit, 20% miss, 15% plus, 10% over quota, 5% shared`);
    console.log(`${'server'.padEnd(28)} conns       rps   p50_us   p99_us errors`);
    for (const [name, c] of [['smmapd', conf], ['smmapd (no cache)', confNoCache], ['smmapd (1 process, no cache)', confOne]] as const) {
      await withDaemon(c, (target) => {
        smload(bin, target, keyFile, 1, 1); // warm-up
        for (const conns of [1, 8]) {
          const l = smload(bin, target, keyFile, conns, SECONDS);
          console.log(row(name, conns, l));
        }
      });
    }
    if (PEER !== '') {
      // Ping-pong latency on loopback depends on how deeply idle the CPUs are, which drifts:
      // compare the two servers in alternating rounds and take each one's median.
      console.log(`\nside by side with ${PEER}, ${ROUNDS} alternating rounds of ${SECONDS} s, medians:`);
      await withDaemon(conf, (target) => {
        for (const conns of [1, 8]) {
          const ours: Load[] = [];
          const peer: Load[] = [];
          for (let r = 0; r < ROUNDS; r++) {
            ours.push(smload(bin, target, keyFile, conns, SECONDS));
            peer.push(smload(bin, PEER, keyFile, conns, SECONDS));
          }
          const o = medianLoad(ours);
          const p = medianLoad(peer);
          console.log(row('smmapd', conns, o));
          console.log(row(`peer ${PEER}`, conns, p));
          console.log(`ratio at ${conns} conn: throughput ${(o.rps / p.rps).toFixed(2)}x; p99 ${o.p99.toFixed(0)} vs ${p.p99.toFixed(0)} us`);
        }
      });
    }
    if (process.env.BENCH_POLICY !== '0') await policySection(confNoCache, keyFile);
    if (process.env.BENCH_METRICS !== '0') await metricsSection(base, dir, keyFile);
    const runs = Number(process.env.BENCH_STARTUP_RUNS ?? 31);
    const s = await stdioStartup(conf, runs);
    console.log(`\nstdio model, spawn to first answer (medians of ${runs} interleaved runs): ${s.smmapd.toFixed(1)} ms; bare node -e 0: ${s.bare.toFixed(1)} ms; ratio ${(s.smmapd / s.bare).toFixed(2)}x`);
    if (process.env.BENCH_MAPS !== '0') await mapsBench({ smloadBin: bin, withDaemon, rounds: ROUNDS }, SECONDS);
    if (process.env.BENCH_IMAP !== '0') {
      await imapBench({ smload: (t, k, c, secs) => smload(bin, t, k, c, secs), withDaemon }, SECONDS);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
