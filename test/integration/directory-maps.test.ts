// Directory maps against the real servers and Postfix's own tables: every key of the corpus
// asked of `postmap -f -q KEY TYPE:FILE` and of smmapd with the same .cf file (conf/maps/,
// hosts and paths substituted) must get the same answer, byte for byte, for pgsql, mysql,
// sqlite and ldap; then failover across two PostgreSQL hosts, TEMP within the deadline
// when every directory is down, and recovery without a restart.
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { childrenOf, ctlOk, freePort, ROOT, runCtl, runCtlAsync, sleep, waitFor } from '../helpers/base';
import { runSmmapd, startSmmapd, type Smmapd } from '../helpers/daemon';
import {
  DIR_KEYS, directoriesMissing, postmapAnswer, resumeLdap, resumeMysql, resumePg, seedLdap, seedMysql, seedPg,
  seedSqlite, startLdap, startMysql, startPg, stopLdap, stopMysql, stopPg, type Ldap, type My, type Pg,
} from '../helpers/directories';
import { describeWithPeer } from '../helpers/suite';
import { Sendmail, sendmailRoot, unshareWorks } from '../helpers/sendmail';
import { pipelining, query } from '../helpers/socketmap';

/** map name → [example file in conf/maps, TYPE] */
const MAPS: ReadonlyArray<readonly [string, string, string]> = [
  ['aliases', 'aliases-pgsql.cf', 'pgsql'],
  ['domain', 'domain-pgsql.cf', 'pgsql'],
  ['labels', 'labels-pgsql.cf', 'pgsql'],
  ['myaliases', 'aliases-mysql.cf', 'mysql'],
  ['catchall', 'catchall-mysql.cf', 'mysql'],
  ['sqlaliases', 'aliases-sqlite.cf', 'sqlite'],
  ['users', 'users-ldap.cf', 'ldap'],
  ['ldapaliases', 'aliases-ldap.cf', 'ldap'],
  ['people', 'people-ldap.cf', 'ldap'],
];

/**
 * Deliberate differences (README "Directory maps"): Postfix's pgsql client talks LATIN1, so
 * in a UTF8 database it cannot find a non-ASCII key nor read a non-ASCII value; we talk UTF8.
 */
const nonAscii = (s: string): boolean => /[^\x00-\x7f]/.test(s);

/** smmapd_maps_timeout of the daemon under test. */
const DEADLINE_S = 8;

const runSql = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });

/** Every process under `pid` (PostgreSQL's backends under its postmaster). */
function descendants(pid: number): number[] {
  return childrenOf(pid).flatMap((k) => [k, ...descendants(k)]);
}

/** Our reply judged against postmap's: NOTFOUND ↔ `NOTFOUND `, ERROR ↔ `TEMP ...`, else the same bytes. */
function agrees(postfix: string, ours: string): boolean {
  if (postfix === 'NOTFOUND') return ours === 'NOTFOUND ';
  if (postfix === 'ERROR') return ours.startsWith('TEMP ');
  return postfix === ours;
}

describeWithPeer('directory maps (PostgreSQL, MariaDB, SQLite, slapd vs postmap)', directoriesMissing(), () => {
  let dir: string;
  let pg1: Pg;
  let pg2: Pg;
  let my: My;
  let ldap: Ldap;
  let daemon: Smmapd;
  const files = new Map<string, string>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smmapd-dirmaps-'));
    chmodSync(dir, 0o755);
    const [p1, p2, mp, lp] = [await freePort(), await freePort(), await freePort(), await freePort()];
    pg1 = await startPg(join(dir, 'pg1'), p1);
    seedPg(p1);
    pg2 = await startPg(join(dir, 'pg2'), p2);
    seedPg(p2);
    my = await startMysql(join(dir, 'my'), mp);
    seedMysql(mp);
    ldap = await startLdap(join(dir, 'ldap'), lp, { tls: true, ldapsPort: await freePort() });
    seedLdap(lp);
    const sqlitePath = join(dir, 'aliases.sqlite');
    seedSqlite(sqlitePath);
    const swaps: Array<[RegExp, string]> = [
      [/127\.0\.0\.1:5432/g, `127.0.0.1:${p1}`],
      [/127\.0\.0\.1:5433/g, `127.0.0.1:${p2}`],
      [/127\.0\.0\.1:3306/g, `127.0.0.1:${mp}`],
      [/127\.0\.0\.1:389/g, `127.0.0.1:${lp}`],
      [/\/var\/lib\/smmapd\/aliases\.sqlite/g, sqlitePath],
    ];
    // a generous deadline: on a loaded 2-core machine a lookup may well take a second
    const conf: string[] = [`configdirectory: ${dir}`, `smmapd_store: ${dir}/smmapd.db`, `smmapd_maps_timeout: ${DEADLINE_S}`];
    for (const [name, file] of [...MAPS.map(([n, f]) => [n, f] as const), ['failover', 'failover-pgsql.cf'] as const]) {
      let text = readFileSync(join(ROOT, 'conf/maps', file), 'utf8');
      for (const [re, to] of swaps) text = text.replace(re, to);
      const path = join(dir, file);
      writeFileSync(path, text);
      files.set(name, path);
      const type = file.replace(/^.*-(\w+)\.cf$/, '$1');
      conf.push(`smmapd_map_${name}: ${type}:${path}`);
    }
    // Sendmail's ALIAS_FILE socket map asks map `Alias0` (the first alias file) for the local part
    conf.push(`smmapd_map_alias0: ldap:${files.get('ldapaliases')!}`);
    writeFileSync(join(dir, 'smmapd.conf'), `${conf.join('\n')}\n`);
    ctlOk(join(dir, 'smmapd.conf'), ['mailbox', 'create', 'user/fred']);
    daemon = await startSmmapd({ conf: join(dir, 'smmapd.conf') });
  }, 240_000);

  afterAll(async () => {
    await daemon?.stop();
    if (pg1) stopPg(pg1);
    if (pg2) stopPg(pg2);
    if (my) await stopMysql(my);
    if (ldap) await stopLdap(ldap);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('answers every key of the corpus as postmap -f -q does, for all four table types', async () => {
    let total = 0;
    let agreed = 0;
    let deliberate = 0;
    const differs: string[] = [];
    const tally: Record<string, number> = {};
    for (const [name, , type] of MAPS) {
      const map = `${type}:${files.get(name)!}`;
      const ours = await query(daemon.target, DIR_KEYS, name);
      const theirs: string[] = [];
      for (let i = 0; i < DIR_KEYS.length; i += 4) theirs.push(...(await Promise.all(DIR_KEYS.slice(i, i + 4).map((k) => postmapAnswer(map, k)))));
      DIR_KEYS.forEach((key, i) => {
        total++;
        if (agrees(theirs[i]!, ours[i]!)) {
          const w = ours[i]!.split(' ')[0]!;
          tally[w] = (tally[w] ?? 0) + 1;
          return void agreed++;
        }
        if (type === 'pgsql' && nonAscii(key)) return void deliberate++;
        differs.push(`${name} ${JSON.stringify(key.slice(0, 40))}: postfix ${JSON.stringify(theirs[i])}, ours ${JSON.stringify(ours[i]!.slice(0, 80))}`);
      });
    }
    console.log(`differential: ${DIR_KEYS.length} keys x ${MAPS.length} maps = ${total}; ${agreed} byte-identical (${JSON.stringify(tally)}), ${deliberate} deliberate (pgsql non-ASCII), ${differs.length} differ`);
    expect(differs).toEqual([]);
  }, 300_000);

  it('pgsql: a non-ASCII key gets the directory answer (UTF8 client encoding)', async () => {
    expect(await query(daemon.target, ['jürgen@example.com'], 'aliases')).toEqual(['OK juergen@example.com']);
  });

  it('a map name nobody configured still gets the Cyrus verification', async () => {
    expect(await query(daemon.target, ['nosuch', 'fred'], 'whatever')).toEqual(['NOTFOUND Mailbox does not exist', 'OK fred']);
    expect(await query(daemon.target, ['fred'], 'smmapd')).toEqual(['OK fred']);
  });

  it('Sendmail 8 expands an alias through the ALIAS_FILE socket map (map name Alias0)', () => {
    const root = sendmailRoot();
    if (root === null || !unshareWorks()) {
      if (process.env.CI) throw new Error('Sendmail 8 (unpacked by .ci/install-peers) and unshare(1) are needed');
      return;
    }
    const sm = new Sendmail(root);
    try {
      const cf = sm.buildCf('', `socket:inet:${daemon.port}@127.0.0.1`);
      const out = sm.verify(cf, ['barney', 'nosuchuser']);
      // barney's entry holds two mail values: the alias expands to both; an unknown name bounces
      expect([...out].sort()).toEqual([
        'barney@example.com... deliverable: mailer esmtp, host example.com, user barney@example.com',
        'nosuchuser... User unknown',
        'team@example.com... deliverable: mailer esmtp, host example.com, user team@example.com',
      ]);
    } finally {
      sm.cleanup();
    }
  }, 120_000);

  it('smmapctl query --map prints what the daemon replies; check-map says what is wrong in one line', async () => {
    const conf = join(dir, 'smmapd.conf');
    const ctl = (c: string, args: string[]): { status: number | null; out: string; err: string } => {
      const r = runCtl(c, args, undefined, 60_000);
      return { status: r.code, out: r.stdout, err: r.stderr };
    };
    const keys = ['info@example.com', 'team@example.com', 'nosuch@example.com', "' OR '1'='1"];
    const q = ctl(conf, ['query', '--map', 'aliases', '--', ...keys]);
    expect(q.status).toBe(0);
    expect(q.out.split('\n').slice(0, -1)).toEqual(await query(daemon.target, keys, 'aliases'));
    const ok = ctl(conf, ['check-map', 'users']);
    expect(ok.status, ok.err).toBe(0);
    expect(ok.out).toMatch(/^map users: ldap:\S+ ok; probe smmapctl-probe@example\.invalid: NOTFOUND \(\d+ ms\)\n$/);
    // a bad line, an unknown template, a directory nobody listens on: each named in one line
    writeFileSync(join(dir, 'bad-line.cf'), 'hosts = inet:127.0.0.1:1\ndbname = x\nthis line has no equals sign\n');
    writeFileSync(join(dir, 'bad-template.cf'), 'hosts = inet:127.0.0.1:1\ndbname = x\nquery = SELECT 1 WHERE a = %x\n');
    writeFileSync(join(dir, 'no-server.cf'), `hosts = inet:127.0.0.1:${await freePort()}\ndbname = x\nquery = SELECT '%s'\nqeury = typo\n`);
    const bad = join(dir, 'bad.conf');
    writeFileSync(bad, `configdirectory: ${dir}\nsmmapd_map_a: pgsql:${dir}/bad-line.cf\nsmmapd_map_b: mysql:${dir}/bad-template.cf\nsmmapd_map_c: pgsql:${dir}/no-server.cf\nsmmapd_map_d: pgsql:${dir}/missing.cf\n`);
    const a = ctl(bad, ['check-map', 'a']);
    expect([a.status, a.err]).toEqual([1, `smmapctl: ${bad}:2: smmapd_map_a: ${dir}/bad-line.cf:3: expected format: name = value\n`]);
    const b = ctl(bad, ['check-map', 'b']);
    expect([b.status, b.err]).toEqual([1, `smmapctl: ${bad}:3: smmapd_map_b: ${dir}/bad-template.cf:3: invalid query template: SELECT 1 WHERE a = %x\n`]);
    const c = ctl(bad, ['check-map', 'c']);
    expect(c.status).toBe(1);
    expect(c.err).toBe(
      `smmapctl: warning: ${dir}/no-server.cf:4: qeury is not used by smmapd's pgsql table (ignored)\n` +
        `smmapctl: ${dir}/no-server.cf: map c (pgsql) cannot answer: pgsql unavailable: ECONNREFUSED\n`,
    );
    const d = ctl(bad, ['check-map', 'd']);
    expect([d.status, d.err]).toEqual([1, `smmapctl: ${bad}:5: smmapd_map_d: cannot read ${dir}/missing.cf: ENOENT\n`]);
    expect(ctl(bad, ['check-map', 'zz']).status).toBe(64);
    // the daemon refuses to start on a bad map file, naming both lines
    const r = runSmmapd(['-C', bad, '--listen', `inet:127.0.0.1:${await freePort()}`], '', 30_000);
    expect(r.status).not.toBe(0);
    expect(r.stderr.toString()).toContain(`${bad}:2: smmapd_map_a: ${dir}/bad-line.cf:3: expected format: name = value`);
  }, 120_000);

  it('ldap: simple bind with bind_pw_file, ldaps:// and STARTTLS with a CA file; a bad password or an untrusted certificate answers TEMP', () => {
    const common = `search_base = ou=people,dc=example,dc=com\nquery_filter = (mail=%s)\nresult_attribute = description\nversion = 3\n`;
    writeFileSync(join(dir, 'ldap.secret'), 'secret\n');
    writeFileSync(join(dir, 'wrong.secret'), 'wrong\n');
    const cfs: Record<string, string> = {
      bound: `server_host = ldap://127.0.0.1:${ldap.port}\nbind_dn = cn=admin,dc=example,dc=com\nbind_pw_file = ${dir}/ldap.secret\n`,
      badpw: `server_host = ldap://127.0.0.1:${ldap.port}\nbind_dn = cn=admin,dc=example,dc=com\nbind_pw_file = ${dir}/wrong.secret\n`,
      ldaps: `server_host = ldaps://127.0.0.1:${ldap.ldapsPort}\ntls_ca_cert_file = ${ldap.caFile}\nbind_dn = cn=admin,dc=example,dc=com\nbind_pw = secret\n`,
      starttls: `server_host = 127.0.0.1:${ldap.port}\nstart_tls = yes\ntls_ca_cert_file = ${ldap.caFile}\n`,
      untrusted: `server_host = 127.0.0.1:${ldap.port}\nstart_tls = yes\n`,
      unverified: `server_host = ldaps://127.0.0.1:${ldap.ldapsPort}\ntls_require_cert = no\n`,
      badfilter: `server_host = ldap://127.0.0.1:${ldap.port}\nquery_filter = (mail=%s\n`,
    };
    const lines = [`configdirectory: ${dir}`, 'smmapd_maps_timeout: 3'];
    for (const [name, text] of Object.entries(cfs)) {
      writeFileSync(join(dir, `${name}.cf`), common + text);
      lines.push(`smmapd_map_${name}: ldap:${dir}/${name}.cf`);
    }
    writeFileSync(join(dir, 'tls.conf'), `${lines.join('\n')}\n`);
    const ask = (map: string): string =>
      runCtl(join(dir, 'tls.conf'), ['query', '--map', map, 'info@example.com'], undefined, 30_000).stdout.trim();
    for (const ok of ['bound', 'ldaps', 'starttls', 'unverified']) expect(ask(ok), ok).toBe('OK fred@mail.example.com');
    expect(ask('badpw')).toMatch(/^TEMP ldap /);
    expect(ask('untrusted')).toMatch(/^TEMP ldap /);
    expect(ask('badfilter')).toBe('TEMP ldap: bad query_filter');
  }, 120_000);

  it('mysql: the password from password_file; a wrong one answers TEMP', () => {
    const base = readFileSync(files.get('myaliases')!, 'utf8').replace(/^password = .*\n/m, '');
    writeFileSync(join(dir, 'my.secret'), 'pw\n');
    writeFileSync(join(dir, 'my-wrong.secret'), 'nope\n');
    writeFileSync(join(dir, 'mypw.cf'), `${base}password_file = ${dir}/my.secret\n`);
    writeFileSync(join(dir, 'mywrong.cf'), `${base}password_file = ${dir}/my-wrong.secret\n`);
    writeFileSync(join(dir, 'mypw.conf'), `configdirectory: ${dir}\nsmmapd_map_mypw: mysql:${dir}/mypw.cf\nsmmapd_map_mywrong: mysql:${dir}/mywrong.cf\n`);
    const ask = (map: string): string =>
      runCtl(join(dir, 'mypw.conf'), ['query', '--map', map, 'info@example.com'], undefined, 30_000).stdout.trim();
    expect(ask('mypw')).toBe('OK fred@example.com');
    expect(ask('mywrong')).toMatch(/^TEMP mysql unavailable: /);
  }, 60_000);

  it('a query the directory refuses: check-map and explain --map print its own reason; the daemon\'s log names the map and its file', async () => {
    const base = readFileSync(files.get('aliases')!, 'utf8').replace(/^query = .*\n/m, '');
    const cf = join(dir, 'norelation.cf');
    writeFileSync(cf, `${base}query = SELECT forward FROM alias WHERE address = '%s'\nqeury = typo\n`);
    const conf = join(dir, 'norelation.conf');
    writeFileSync(conf, `configdirectory: ${dir}\nsmmapd_store: ${dir}/smmapd.db\nsmmapd_workers: 1\nsmmapd_map_broken: pgsql:${cf}\n`);
    const check = runCtl(conf, ['check-map', 'broken'], undefined, 30_000);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain(`smmapctl: warning: ${cf}:`);
    expect(check.stderr).toMatch(new RegExp(`map broken \\(pgsql\\) cannot answer: pgsql query failed \\(pgsql: .*query failed: relation "alias" does not exist\\)`));
    const explain = runCtl(conf, ['explain', '--map', 'broken', 'info@example.com'], undefined, 30_000);
    expect(explain.stdout).toMatch(/^ {2}directory: pgsql: .*query failed: relation "alias" does not exist\nTEMP pgsql query failed\n$/m);
    const d = await startSmmapd({ conf });
    try {
      expect(await query(d.target, ['info@example.com'], 'broken')).toEqual(['TEMP pgsql query failed']);
      await new Promise((res) => setTimeout(res, 300));
      // an ignored parameter is a warning; the directory's error names the map and its .cf
      expect(d.output()).toMatch(new RegExp(`warning: map broken: ${cf}:\\d+: qeury is not used by smmapd's pgsql table \\(ignored\\)`));
      expect(d.output()).toContain(`error: map broken (${cf}): pgsql: `);
      expect(d.output()).toContain('query failed: relation "alias" does not exist');
    } finally {
      await d.stop();
    }
  }, 60_000);

  it('SIGHUP opens the maps of the new configuration; a bad map file keeps the running one', async () => {
    const conf = join(dir, 'smmapd.conf');
    const original = readFileSync(conf, 'utf8');
    const askUntil = async (map: string, want: string): Promise<string> => {
      let r = '';
      for (let i = 0; i < 40 && (r = (await query(daemon.target, ['info@example.com'], map))[0]!) !== want; i++) await new Promise((res) => setTimeout(res, 250));
      return r;
    };
    try {
      expect((await query(daemon.target, ['info@example.com'], 'reloaded'))[0]).toMatch(/^NOTFOUND Mailbox does not exist$/);
      writeFileSync(conf, `${original}smmapd_map_reloaded: pgsql:${files.get('aliases')!}\n`);
      daemon.proc.kill('SIGHUP');
      expect(await askUntil('reloaded', 'OK fred@example.com')).toBe('OK fred@example.com');
      writeFileSync(conf, `${original}smmapd_map_reloaded: pgsql:${files.get('aliases')!}\nsmmapd_map_bad: pgsql:${dir}/nonexistent.cf\n`);
      daemon.proc.kill('SIGHUP');
      await new Promise((res) => setTimeout(res, 1500));
      expect(await query(daemon.target, ['info@example.com'], 'reloaded')).toEqual(['OK fred@example.com']);
    } finally {
      writeFileSync(conf, original);
      daemon.proc.kill('SIGHUP');
    }
    expect(await askUntil('reloaded', 'NOTFOUND Mailbox does not exist')).toBe('NOTFOUND Mailbox does not exist');
  }, 60_000);

  it('fails over to the second PostgreSQL host when the first is stopped, and back', async () => {
    expect(await query(daemon.target, ['info@example.com'], 'failover')).toEqual(['OK fred@example.com']);
    stopPg(pg1);
    expect(await query(daemon.target, ['info@example.com', 'team@example.com'], 'failover')).toEqual([
      'OK fred@example.com', 'OK fred@example.com,barney@example.com,wilma@example.org',
    ]);
    await resumePg(pg1);
    // a first host that accepts and then says nothing: it gets its share of the deadline, then the next one answers
    const silent = net.createServer(() => undefined).listen(0, '127.0.0.1');
    await new Promise((r) => silent.once('listening', r));
    const sp = (silent.address() as net.AddressInfo).port;
    writeFileSync(join(dir, 'silent.cf'), readFileSync(files.get('failover')!, 'utf8').replace(/^hosts = .*$/m, `hosts = inet:127.0.0.1:${sp}, inet:127.0.0.1:${pg2.port}`));
    writeFileSync(join(dir, 'silent.conf'), `configdirectory: ${dir}\nsmmapd_maps_timeout: 4\nsmmapd_map_silent: pgsql:${dir}/silent.cf\n`);
    const t0 = Date.now();
    const r = (await runCtlAsync(join(dir, 'silent.conf'), ['query', '--map', 'silent', 'info@example.com'])).stdout;
    silent.close();
    expect(r).toBe('OK fred@example.com\n');
    expect(Date.now() - t0).toBeLessThan(4000 + 2000);
  }, 60_000);

  it('a hung directory (SIGSTOP) is marked down at the deadline: TEMP at once, no queue, no stale queries; recovers after SIGCONT', async () => {
    const timeoutS = 2;
    const conf = join(dir, 'hang.conf');
    writeFileSync(conf, [`configdirectory: ${dir}`, `smmapd_store: ${dir}/smmapd.db`, 'smmapd_workers: 1', `smmapd_maps_timeout: ${timeoutS}`,
      `smmapd_map_my: mysql:${files.get('myaliases')!}`, `smmapd_map_pg: pgsql:${files.get('aliases')!}`, `smmapd_map_ldap: ldap:${files.get('users')!}`, ''].join('\n'));
    const d = await startSmmapd({ conf });
    // smmapd_workers: 1 serves in the one process
    const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
    const mySelects = (): number => Number(runSql('mariadb', ['-h', '127.0.0.1', '-P', String(my.port), '-u', 'root', '-N', '-e', "SHOW GLOBAL STATUS LIKE 'Com_select'"]).split(/\s+/)[1]);
    const pidOf = (file: string): number => Number(readFileSync(file, 'utf8').split('\n')[0]!.trim());
    const cases: ReadonlyArray<readonly [string, () => number, string]> = [
      ['my', () => pidOf(join(my.dir, 'pid')), 'OK fred@example.com'],
      ['pg', () => pidOf(join(pg1.dir, 'data', 'postmaster.pid')), 'OK fred@example.com'],
      ['ldap', () => pidOf(join(ldap.dir, 'slapd.pid')), 'OK fred@mail.example.com'],
    ];
    const report: string[] = [];
    try {
      for (const [map, pidFn, okReply] of cases) {
        // unique keys (a miss each), and every 8th the key that answers OK
        let n = 0;
        const load = pipelining(d.target, map, 8, 50, () => (++n % 8 === 0 ? 'info@example.com' : `n${n}@example.com`));
        await sleep(1500);
        const wpid = d.proc.pid!;
        const rss0 = rssMb(wpid);
        // the whole server: PostgreSQL's backends too
        const pids = [pidFn(), ...descendants(pidFn())];
        for (const pid of pids) process.kill(pid, 'SIGSTOP');
        const tStop = load.now();
        let rss1: number;
        let q0 = 0;
        let tCont: number;
        try {
          await sleep(8000);
          rss1 = rssMb(wpid);
        } finally {
          for (const pid of pids) process.kill(pid, 'SIGCONT');
          tCont = load.now();
        }
        if (map === 'my') q0 = mySelects();
        const recovered = await waitFor(() => load.records.some((r) => r.sent > tCont && r.status === 'OK'), 8000);
        await sleep(500);
        const q1 = map === 'my' ? mySelects() : 0;
        await load.stop();
        const R = load.records;
        const hang = R.filter((r) => r.sent > tStop + timeoutS * 1000 + 1000 && r.answered < tCont);
        const lat = hang.map((r) => r.answered - r.sent).sort((a, b) => a - b);
        const firstOk = Math.min(...R.filter((r) => r.sent > tCont && r.status === 'OK').map((r) => r.answered - tCont));
        const fresh = R.filter((r) => r.sent > tCont).length + 100; // (asked and not yet answered: at most 8 x 50)
        const line = `${map}: during the hang ${hang.length} answers, median ${lat[lat.length >> 1]} ms, max ${lat.at(-1)} ms (deadline ${timeoutS} s); ` +
          `RSS ${rss0.toFixed(0)} -> ${rss1!.toFixed(0)} MB; first OK ${firstOk} ms after SIGCONT` + (map === 'my' ? `; ${q1 - q0} SELECTs for ${fresh - 100} requests after SIGCONT` : '');
        report.push(line);
        expect(hang.length, line).toBeGreaterThan(100);
        expect(new Set(hang.map((r) => r.status)), line).toEqual(new Set(['TEMP']));
        expect(lat[lat.length >> 1]!, line).toBeLessThan(1000); // fast: the host is down, not waited for
        expect(lat.at(-1)!, line).toBeLessThan(timeoutS * 1000 + 1500); // nothing past the deadline (a loaded machine's slack)
        expect(rss1! - rss0, line).toBeLessThan(64); // nothing queues without bound
        expect(recovered, line).toBe(true);
        expect(firstOk, line).toBeLessThan(5000); // backoff at most 2 s, then a probe
        // no stale queries: what the server ran after SIGCONT is what was asked after it (abandoned ones: a pool's worth)
        if (map === 'my') expect(q1 - q0, line).toBeLessThan(fresh + 50);
        expect(await query(d.target, ['info@example.com'], map)).toEqual([okReply]);
      }
    } finally {
      console.log(report.join('\n'));
      await d.stop();
    }
  }, 180_000);

  it('answers TEMP within the deadline when every directory is down, and recovers by itself', async () => {
    stopPg(pg1);
    stopPg(pg2);
    await stopMysql(my);
    await stopLdap(ldap);
    for (const m of ['aliases', 'failover', 'myaliases', 'users', 'ldapaliases']) {
      const t0 = Date.now();
      const [r] = await query(daemon.target, ['info@example.com'], m);
      expect(r, m).toMatch(/^TEMP \S/);
      expect(Date.now() - t0, m).toBeLessThan(DEADLINE_S * 1000 + 1500);
    }
    await resumePg(pg1);
    await resumePg(pg2);
    await resumeMysql(my);
    await resumeLdap(ldap);
    // the backoff is at most 5 s: within 8 s every map answers again, no restart
    const end = Date.now() + 8000;
    const want: Record<string, string> = { aliases: 'OK fred@example.com', failover: 'OK fred@example.com', myaliases: 'OK fred@example.com', users: 'OK fred@mail.example.com' };
    for (const [m, w] of Object.entries(want)) {
      let r = '';
      while (Date.now() < end && (r = (await query(daemon.target, ['info@example.com'], m))[0]!) !== w) await new Promise((res) => setTimeout(res, 250));
      expect(r, m).toBe(w);
    }
  }, 120_000);
});
