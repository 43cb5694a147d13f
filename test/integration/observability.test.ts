// Prometheus metrics (smmapd_metrics_listen) summed over the listener's workers, and
// smmapctl explain, against the real daemon and CLI.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childrenOf, cpuTicks, freePort, haveCommand, ROOT, runCtlAsync, sleep, waitFor } from '../helpers/base';
import { runSmmapd, startSmmapd, type Smmapd } from '../helpers/daemon';
import { FakeImap } from '../helpers/fake-imap';
import { seedLdap, seedSqlite, startLdap, stopLdap, type Ldap } from '../helpers/directories';
import { describeWithPeer } from '../helpers/suite';
import { ctl, makeFixture, type Fixture } from '../helpers/fixture';
import { policyQuery } from '../helpers/policy';
import { query } from '../helpers/socketmap';

async function scrape(port: number, path = '/metrics'): Promise<{ status: number; type: string; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() };
}

/** Sum of a metric's samples whose labels contain every `match` (e.g. `status="OK"`). */
function sum(body: string, name: string, ...match: string[]): number {
  let n = 0;
  for (const line of body.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (match.every((x) => (m[2] ?? '').includes(x))) n += Number(m[3]);
  }
  return n;
}

/** Every distinct value of one label in the samples of `body`. */
function labelValues(body: string, label: string, metric = ''): Set<string> {
  const out = new Set<string>();
  for (const line of body.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(metric)) continue;
    for (const m of line.matchAll(new RegExp(`[{,]${label}="([^"]*)"`, 'g'))) out.add(m[1]!);
  }
  return out;
}

/** Sample lines of the smmapd_* metrics (what client traffic could grow). */
function smmapdSeries(body: string): number {
  return body.split('\n').filter((l) => l.startsWith('smmapd_')).length;
}

/** A scrape once `processes` processes answer it (a worker that is still starting does not yet). */
async function scrapeAll(port: number, processes: number): Promise<string> {
  let body = '';
  for (let i = 0; i < 150; i++) {
    body = await scrape(port).then((r) => r.body, () => '');
    if (labelValues(body, 'process', 'process_open_fds{').size === processes) break;
    await sleep(100);
  }
  return body;
}

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('metrics, two workers', () => {
  let fx: Fixture;
  let d: Smmapd;
  let mport: number;
  beforeAll(async () => {
    mport = await freePort();
    fx = makeFixture(`smmapd_workers: 2\nsmmapd_metrics_listen: inet:127.0.0.1:${mport}`);
    d = await startSmmapd({ conf: fx.conf });
    await waitFor(() => d.output().includes('/metrics'), 10_000);
    await scrapeAll(mport, 3);
  });
  afterAll(async () => {
    await d?.stop();
    rmSync(fx.dir, { recursive: true, force: true });
  });

  it('counts exactly what was answered, over both workers, in Prometheus text', async () => {
    const before = await scrape(mport);
    expect(before.status).toBe(200);
    expect(before.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    for (const line of before.body.split('\n')) {
      expect(line, 'every line a comment or a sample').toMatch(/^(#.*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? \S+|)$/);
    }
    expect(sum(before.body, 'smmapd_workers')).toBe(2);
    // 12 connections of 4 requests: both workers answer some
    for (let i = 0; i < 12; i++) await query(d.target, ['fred', 'nosuch', 'full', '+shared.nopost']);
    const after = (await scrape(mport)).body;
    const delta = (name: string, ...m: string[]): number => sum(after, name, ...m) - sum(before.body, name, ...m);
    expect(delta('smmapd_answers_total', 'status="OK"', 'outcome="ok"', 'map="smmapd"')).toBe(12);
    expect(delta('smmapd_answers_total', 'status="NOTFOUND"', 'outcome="nonexistent"')).toBe(12);
    expect(delta('smmapd_answers_total', 'status="TEMP"', 'outcome="overquota"')).toBe(12);
    expect(delta('smmapd_answers_total', 'status="PERM"', 'outcome="failed"')).toBe(12);
    expect(delta('smmapd_answer_duration_seconds_count')).toBe(48);
    expect(delta('smmapd_answer_duration_seconds_bucket', 'le="+Inf"')).toBe(48);
    expect(delta('smmapd_cache_hits_total') + delta('smmapd_cache_misses_total')).toBe(48);
    expect(delta('smmapd_cache_hits_total')).toBeGreaterThanOrEqual(40); // at most 4 keys × 2 workers miss
    expect(delta('smmapd_connections_total')).toBe(12);
    expect(delta('smmapd_store_errors_total')).toBe(0);
    expect(sum(after, 'smmapd_process_start_time_seconds')).toBeGreaterThan(Date.now() / 1000 - 3600);
  });

  it('a worker that dies takes none of the counts with it', async () => {
    await query(d.target, ['fred']);
    const before = sum((await scrape(mport)).body, 'smmapd_answers_total');
    const [victim] = childrenOf(d.proc.pid!);
    process.kill(victim!, 'SIGKILL');
    await waitFor(() => !childrenOf(d.proc.pid!).includes(victim!) && childrenOf(d.proc.pid!).length === 2, 15_000);
    expect(sum((await scrape(mport)).body, 'smmapd_answers_total')).toBeGreaterThanOrEqual(before);
  }, 30_000);

  it('build info, and process_* for every process, labelled by process', async () => {
    const body = (await scrape(mport)).body;
    expect(body).toContain(`smmapd_build_info{version="${VERSION}",nodejs="${process.versions.node}"} 1\n`);
    for (const name of ['process_resident_memory_bytes', 'process_open_fds', 'process_cpu_seconds_total', 'process_start_time_seconds']) {
      expect(labelValues(body, 'process', `${name}{`), name).toEqual(new Set(['primary', 'worker1', 'worker2']));
    }
    expect(sum(body, 'process_open_fds', 'process="worker1"')).toBeGreaterThan(0);
  });

  it('map labels come from the configuration, never from the client; worker churn adds no series', async () => {
    // 300 map names chosen by clients, over several connections (both workers see some)
    for (let c = 0; c < 10; c++) {
      const names = Array.from({ length: 30 }, (_, i) => `junk${c}x${i}`);
      await Promise.all(names.map((n) => query(d.target, ['fred', 'nosuch'], n)));
    }
    let body = (await scrape(mport)).body;
    expect(labelValues(body, 'map')).toEqual(new Set(['smmapd', 'other', 'policy']));
    expect(sum(body, 'smmapd_answers_total', 'map="other"')).toBeGreaterThanOrEqual(300);
    const series = smmapdSeries(body);
    let answers = sum(body, 'smmapd_answers_total');
    // both workers replaced, twice, with more client-chosen names in between
    for (let round = 0; round < 2; round++) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => query(d.target, ['fred', 'nosuch'], `r${round}n${i}`)));
      await scrape(mport); // the primary learns the workers' figures
      const old = childrenOf(d.proc.pid!);
      for (const w of old) process.kill(w, 'SIGKILL');
      expect(await waitFor(() => { const now = childrenOf(d.proc.pid!); return now.length === 2 && now.every((p) => !old.includes(p)); }, 20_000)).toBe(true);
      body = await scrapeAll(mport, 3);
      expect(smmapdSeries(body)).toBe(series);
      expect(labelValues(body, 'process', 'process_open_fds{')).toEqual(new Set(['primary', 'worker1', 'worker2']));
      const now = sum(body, 'smmapd_answers_total');
      expect(now, 'counters of exited workers are kept: the sums never go down').toBeGreaterThanOrEqual(answers + 40);
      answers = now;
    }
  }, 60_000);

  it('serves GET /metrics only', async () => {
    expect((await scrape(mport, '/')).status).toBe(404);
    expect((await scrape(mport, '/metrics/x')).status).toBe(404);
    const post = await fetch(`http://127.0.0.1:${mport}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    // a GET with a body: refused, and the body is not read
    const reply = await new Promise<string>((resolve) => {
      let got = '';
      const sock = net.connect(mport, '127.0.0.1', () => sock.write(`GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n${'x'.repeat(1000)}`));
      sock.on('data', (b) => (got += b.toString()));
      sock.on('error', () => undefined);
      sock.on('close', () => resolve(got));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 413 /);
    expect((await scrape(mport, '/metrics?x=1')).status).toBe(200);
  });

  it('drops idle, slow and surplus connections, then serves again', async () => {
    const opened: Array<{ sock: net.Socket; closedAt: number }> = [];
    const t0 = Date.now();
    const open = (): Promise<{ sock: net.Socket; closedAt: number }> =>
      new Promise((resolve, reject) => {
        const sock = net.connect(mport, '127.0.0.1');
        const c = { sock, closedAt: 0 };
        sock.on('error', () => undefined);
        sock.on('close', () => (c.closedAt = Date.now()));
        sock.once('connect', () => resolve(c));
        sock.once('error', reject);
        opened.push(c);
      });
    // 40 connections that never send a byte (the bound is 32), one that sends its headers a byte a second
    const idle = await Promise.all(Array.from({ length: 40 }, open));
    const slow = idle[0]!;
    const header = 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'y'.repeat(60);
    let i = 0;
    const drip = setInterval(() => {
      if (slow.closedAt === 0 && i < header.length) slow.sock.write(header[i++]!);
    }, 1000);
    try {
      expect(await waitFor(() => opened.filter((c) => c.closedAt > 0).length >= 8, 3000), 'surplus connections closed at once').toBe(true);
      // the bound: headers within 5 s, checked every second; generous for a loaded machine
      expect(await waitFor(() => opened.every((c) => c.closedAt > 0), 20_000), 'idle and slow connections dropped').toBe(true);
      expect(slow.closedAt - t0).toBeLessThan(20_000);
    } finally {
      clearInterval(drip);
      for (const c of opened) c.sock.destroy();
    }
    expect((await scrape(mport)).status).toBe(200);
  }, 40_000);
});

describe('metrics: reload outcome, directory hosts, the replica', () => {
  it('config_last_reload_successful and its timestamp follow SIGHUP in every process', async () => {
    const mport = await freePort();
    const fx = makeFixture(`smmapd_workers: 2\nsmmapd_metrics_listen: inet:127.0.0.1:${mport}`);
    const d = await startSmmapd({ conf: fx.conf });
    try {
      await waitFor(() => d.output().includes('/metrics'), 10_000);
      const t0 = (await scrape(mport)).body;
      expect(sum(t0, 'smmapd_config_last_reload_successful')).toBe(1);
      const loaded = sum(t0, 'smmapd_config_last_reload_success_timestamp_seconds');
      expect(loaded).toBeGreaterThan(Date.now() / 1000 - 120);
      await sleep(1100);
      d.proc.kill('SIGHUP');
      await waitFor(() => (d.output().match(/reloaded/g) ?? []).length >= 2, 10_000);
      const t1 = (await scrape(mport)).body;
      expect(sum(t1, 'smmapd_config_last_reload_successful')).toBe(1);
      expect(sum(t1, 'smmapd_config_last_reload_success_timestamp_seconds')).toBeGreaterThan(loaded);
      appendFileSync(fx.conf, 'smmapd_workers: many\n');
      d.proc.kill('SIGHUP');
      await waitFor(() => (d.output().match(/reload failed, keeping/g) ?? []).length >= 2, 10_000);
      const t2 = (await scrape(mport)).body;
      expect(sum(t2, 'smmapd_config_last_reload_successful')).toBe(0);
      expect(sum(t2, 'smmapd_config_last_reload_success_timestamp_seconds')).toBe(sum(t1, 'smmapd_config_last_reload_success_timestamp_seconds'));
    } finally {
      await d.stop();
      rmSync(fx.dir, { recursive: true, force: true });
    }
  }, 30_000);

  it("a directory host that refuses is down, and its TEMP is a directory error, not a store error", async () => {
    const mport = await freePort();
    const dead = await freePort(); // nothing listens there: connection refused
    const fx = makeFixture(`smmapd_workers: 1\nsmmapd_metrics_listen: inet:127.0.0.1:${mport}`);
    const cf = join(fx.dir, 'aliases-pgsql.cf');
    writeFileSync(cf, `hosts = inet:127.0.0.1:${dead}\nuser = postgres\npassword = x\ndbname = postgres\nquery = SELECT goto FROM aliases WHERE alias='%s'\n`);
    appendFileSync(fx.conf, `smmapd_map_aliases: pgsql:${cf}\n`);
    const d = await startSmmapd({ conf: fx.conf });
    try {
      await waitFor(() => d.output().includes('/metrics'), 10_000);
      let body = (await scrape(mport)).body;
      expect(sum(body, 'smmapd_directory_up', 'map="aliases"', `host="inet:127.0.0.1:${dead}"`)).toBe(1);
      expect(sum(body, 'smmapd_directory_errors_total', 'map="aliases"')).toBe(0);
      const r = await query(d.target, ['a@example.com'], 'ALIASES');
      expect(r[0]).toMatch(/^TEMP /);
      expect(await query(d.target, ['fred'])).toEqual(['OK fred']);
      body = (await scrape(mport)).body;
      expect(body).toContain(`smmapd_directory_up{map="aliases",host="inet:127.0.0.1:${dead}"} 0\n`);
      expect(sum(body, 'smmapd_directory_errors_total', 'map="aliases"')).toBe(1);
      expect(sum(body, 'smmapd_store_errors_total')).toBe(0);
      expect(sum(body, 'smmapd_answers_total', 'status="TEMP"', 'map="aliases"')).toBe(1);
      expect(sum(body, 'smmapd_answer_duration_seconds_count', 'map="aliases"')).toBe(1);
      expect(labelValues(body, 'map')).toEqual(new Set(['smmapd', 'other', 'policy', 'aliases']));
    } finally {
      await d.stop();
      rmSync(fx.dir, { recursive: true, force: true });
    }
  }, 30_000);

  it("the replica's last sync time, written by smmapctl sync, read by the daemon", async () => {
    const fake = new FakeImap();
    fake.mailboxes.set('user.fred', { acl: [['fred', 'lrswipkxtecda']] });
    await fake.start();
    const mport = await freePort();
    const fx = makeFixture(`smmapd_workers: 2\nsmmapd_metrics_listen: inet:127.0.0.1:${mport}`);
    const d = await startSmmapd({ conf: fx.conf });
    try {
      await waitFor(() => d.output().includes('/metrics'), 10_000);
      expect((await scrape(mport)).body).not.toContain('smmapd_replica_last_sync_timestamp_seconds ');
      const syncConf = join(fx.dir, 'sync.conf');
      writeFileSync(syncConf, `${readFileSync(fx.conf, 'utf8')}smmapd_imap_server: 127.0.0.1:${fake.port}\nsmmapd_imap_tls: none\nsmmapd_imap_user: cyrus\nsmmapd_imap_password: secret\n`);
      const before = Date.now() / 1000;
      const r = await runCtlAsync(syncConf, ['sync']);
      expect(r.code, r.stderr).toBe(0);
      const at = sum((await scrape(mport)).body, 'smmapd_replica_last_sync_timestamp_seconds');
      expect(at).toBeGreaterThanOrEqual(Math.floor(before) - 1);
      expect(at).toBeLessThanOrEqual(Date.now() / 1000);
    } finally {
      await d.stop();
      await fake.stop();
      rmSync(fx.dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('metrics, one process, policy service', () => {
  it('counts policy actions and store errors', async () => {
    const mport = await freePort();
    const fx = makeFixture(`smmapd_workers: 1\nsmmapd_metrics_listen: inet:127.0.0.1:${mport}`);
    const d = await startSmmapd({ conf: fx.conf, args: ['--policy'] });
    try {
      await waitFor(() => d.output().includes('/metrics'), 10_000);
      await policyQuery(d.port, [{ recipient: 'fred', size: 1 }, { recipient: 'nosuch' }, { recipient: 'full' }, { recipient: '' }]);
      rmSync(fx.store);
      await policyQuery(d.port, [{ recipient: 'fred', size: 1 }]);
      const body = (await scrape(mport)).body;
      expect(sum(body, 'smmapd_policy_actions_total', 'kind="success"')).toBe(1);
      expect(sum(body, 'smmapd_policy_actions_total', 'kind="nouser"')).toBe(1);
      expect(sum(body, 'smmapd_policy_actions_total', 'kind="overquota"')).toBe(1);
      expect(sum(body, 'smmapd_policy_actions_total', 'kind="norecipient"')).toBe(1);
      expect(sum(body, 'smmapd_policy_actions_total', 'kind="failure"')).toBe(1);
      expect(sum(body, 'smmapd_answers_total', 'map="policy"')).toBe(4);
      expect(sum(body, 'smmapd_store_errors_total')).toBe(1);
      expect(sum(body, 'smmapd_workers')).toBe(1);
      expect(sum(body, 'smmapd_answer_duration_seconds_count', 'map="policy"')).toBe(4);
      expect(labelValues(body, 'process', 'process_open_fds{')).toEqual(new Set(['main']));
    } finally {
      await d.stop();
      rmSync(fx.dir, { recursive: true, force: true });
    }
  });

  it('a bad smmapd_metrics_listen stops the start (EX_CONFIG) with the file named', () => {
    const fx = makeFixture();
    try {
      appendFileSync(fx.conf, 'smmapd_metrics_listen: 127.0.0.1:9100\n');
      const r = runSmmapd(['-C', fx.conf, '--listen', 'inet:127.0.0.1:1'], '');
      expect(r.status).toBe(78);
      expect(r.stderr.toString()).toContain(`${fx.conf}: smmapd_metrics_listen: want inet:HOST:PORT, not "127.0.0.1:9100"`);
    } finally {
      rmSync(fx.dir, { recursive: true, force: true });
    }
  });
});

describe('busy polling (smmapd_busy_poll)', () => {
  it('counted, bounded to the activity (an idle daemon neither polls nor spends CPU), off with smmapd_busy_poll: 0, and on SIGHUP', async () => {
    for (const usec of [200, 0]) {
      const mport = await freePort();
      const fx = makeFixture(`smmapd_workers: 1\nsmmapd_busy_poll: ${usec}\nsmmapd_metrics_listen: inet:127.0.0.1:${mport}`);
      const d = await startSmmapd({ conf: fx.conf });
      try {
        await waitFor(() => d.output().includes('/metrics'), 10_000);
        const t0 = performance.now();
        expect(new Set(await query(d.target, Array.from({ length: 300 }, (_, i) => (i % 2 ? 'fred' : 'nosuch'))))).toEqual(new Set(['OK fred', 'NOTFOUND Mailbox does not exist']));
        const busy = (performance.now() - t0) / 1000;
        const polled = sum((await scrape(mport)).body, 'smmapd_busy_poll_seconds_total');
        if (usec === 0) expect(polled).toBe(0);
        else expect(polled).toBeLessThanOrEqual(busy + 0.001);
        const before = cpuTicks(d.pid);
        await sleep(1000);
        expect(cpuTicks(d.pid) - before).toBeLessThanOrEqual(3); // 10 ms ticks: no spinning while idle
        expect(sum((await scrape(mport)).body, 'smmapd_busy_poll_seconds_total')).toBe(polled);
        if (usec > 0) {
          // SIGHUP applies it: turned off, the lookups after the reload poll no more
          writeFileSync(fx.conf, readFileSync(fx.conf, 'utf8').replace(`smmapd_busy_poll: ${usec}`, 'smmapd_busy_poll: 0'));
          d.proc.kill('SIGHUP');
          await waitFor(() => d.output().includes('reloaded'), 10_000);
          await sleep(50);
          const off = sum((await scrape(mport)).body, 'smmapd_busy_poll_seconds_total');
          await query(d.target, Array.from({ length: 300 }, () => 'fred'));
          await sleep(50);
          expect(sum((await scrape(mport)).body, 'smmapd_busy_poll_seconds_total')).toBe(off);
        }
      } finally {
        await d.stop();
        rmSync(fx.dir, { recursive: true, force: true });
      }
    }
  });
});

describe('smmapctl explain', () => {
  let fx: Fixture;
  beforeAll(() => {
    fx = makeFixture();
    ctl(fx.conf, ['batch'], ['mailbox create user.mallory', 'deny add mallory --services "imap,smmapd" --message "Account suspended"', 'mailbox create shared.open', 'acl set shared.open anyone lrsp'].join('\n'));
  });
  afterAll(() => rmSync(fx.dir, { recursive: true, force: true }));

  it('ends each key with exactly the line smmapctl query prints', () => {
    const keys = ['fred', 'Fred+Lists@Example.COM', 'nosuch', 'full', 'mallory', '+shared.nopost', '+shared.open', '+nosuch.folder', 'x\u0001y'];
    const q = ctl(fx.conf, ['query', '--', ...keys]).trimEnd().split('\n');
    const out = ctl(fx.conf, ['explain', '--', ...keys]).trimEnd().split('\n');
    const blocks: string[][] = [];
    for (const l of out) {
      if (l.startsWith('key ')) blocks.push([l]);
      else blocks[blocks.length - 1]!.push(l);
    }
    expect(blocks.map((b) => b[0])).toEqual(keys.map((k) => `key ${JSON.stringify(k)}`));
    expect(blocks.map((b) => b[b.length - 1])).toEqual(q);
  });

  it('names each step: split, mailbox, deny and service, existence, anonymous rights, quota root and verdict', () => {
    const full = ctl(fx.conf, ['explain', 'full']);
    expect(full).toContain('  mailbox: user.full (owned by full)\n');
    expect(full).toContain('  deny: no deny entry for full\n');
    expect(full).toContain('  exists: yes\n');
    expect(full).toContain('  quota root: user.full: storage 2048 bytes used of 1 KiB (1024 bytes), messages 0 of unlimited\n');
    expect(full).toMatch(/ {2}quota: over quota: storage over the limit/);
    expect(full.trimEnd().split('\n').pop()).toBe('TEMP Over quota');
    const mallory = ctl(fx.conf, ['explain', 'mallory']);
    expect(mallory).toContain('  deny: entry for mallory with services "imap,smmapd" matches service "smmapd": "Account suspended"\n');
    const nopost = ctl(fx.conf, ['explain', '+shared.nopost']);
    expect(nopost).toContain('  mailbox: shared.nopost (a shared folder)\n');
    expect(nopost).toMatch(/ {2}acl: anonymous holds "lrs" on the shared folder .*: l without p: Permission denied\n/);
    const split = ctl(fx.conf, ['explain', 'Fred+Lists@Example.COM']);
    expect(split).toContain('  split: user "fred", detail "Lists" -> folders [Lists], domain "Example.COM" dropped (virtdomains off)\n');
  });

  it('--size judges the quota as smmapd --policy and ends with its action', () => {
    const out = ctl(fx.conf, ['explain', '--size', '5000', 'fred', 'full']).trimEnd().split('\n');
    expect(out.filter((l) => l.startsWith('action='))).toEqual(['action=DUNNO', 'action=452 4.2.2 Over quota']);
    expect(out).toContain('  quota: over quota: with this message of 5000 bytes (grace 0%)');
  });
});

describeWithPeer('smmapctl explain --map (the example maps, SQLite and slapd)', haveCommand('/usr/sbin/slapd') ? null : 'slapd', () => {
  let dir: string;
  let conf: string;
  let ldap: Ldap;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smmapd-explain-map-'));
    const lp = await freePort();
    ldap = await startLdap(join(dir, 'ldap'), lp);
    seedLdap(lp);
    const sqlitePath = join(dir, 'aliases.sqlite');
    seedSqlite(sqlitePath);
    const cf = (file: string): string => {
      const text = readFileSync(join(ROOT, 'conf/maps', file), 'utf8').replace(/127\.0\.0\.1:389/g, `127.0.0.1:${lp}`).replace(/\/var\/lib\/smmapd\/aliases\.sqlite/g, sqlitePath);
      writeFileSync(join(dir, file), text);
      return join(dir, file);
    };
    conf = join(dir, 'smmapd.conf');
    writeFileSync(conf, `configdirectory: ${dir}\nsmmapd_store: ${dir}/smmapd.db\nsmmapd_map_aliases: sqlite:${cf('aliases-sqlite.cf')}\nsmmapd_map_users: ldap:${cf('users-ldap.cf')}\n`);
  }, 60_000);
  afterAll(async () => {
    if (ldap) await stopLdap(ldap);
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows the map, the query or filter with the key quoted, and ends with the query --map line', () => {
    for (const [map, keys] of [['aliases', ["o'brien@example.com", 'team@example.com', 'nosuch@example.com']], ['users', ['fred@example.com', 'p(a)ren@example.com', 'nosuch@example.com']]] as const) {
      const q = ctl(conf, ['query', '--map', map, ...keys]).trimEnd().split('\n');
      const out = ctl(conf, ['explain', '--map', map, ...keys]).trimEnd().split('\n');
      expect(out.filter((l) => !l.startsWith(' ') && !l.startsWith('key '))).toEqual(q);
      expect(out.filter((l) => l.startsWith('  map: ')).length).toBe(3);
    }
    const sql = ctl(conf, ['explain', '--map', 'aliases', "o'brien@example.com"]);
    expect(sql).toContain("  lookup: SELECT goto FROM aliases WHERE alias='o''brien@example.com' AND active\n");
    expect(sql.trimEnd().split('\n').pop()).toBe('OK obrien@example.com');
    const ldif = ctl(conf, ['explain', '--map', 'users', 'p(a)ren@example.com']);
    expect(ldif).toContain('  lookup: search base "ou=people,dc=example,dc=com" scope sub filter (mail=p\\28a\\29ren@example.com) attributes description\n');
    expect(ldif.trimEnd().split('\n').pop()).toBe('OK paren@mail.example.com');
  });
});
