// The directory maps in `npm run bench` (root and Debian's postgresql, mariadb-server and
// slapd needed): lookups per second through a PostgreSQL, a MariaDB and an LDAP map at 1
// and 8 connections, with the answer cache off (every lookup asks the directory) and on
// (smmapd_maps_cache_ttl). With SOCKMAPD=/path/to/sockmapd (ezplanet/sockmapd, the Go
// socketmap daemon; never a dependency: built by hand, see README "Performance"), the same
// MariaDB table and keys through it and through smmapd uncached, in alternating rounds:
// smmapd over TCP as sockmapd connects, and over MariaDB's unix socket (what Postfix's
// `hosts = localhost` means; sockmapd can only use TCP).
// BENCH_ONLY=maps runs this section alone, BENCH_ONLY=sockmapd the side by side alone;
// BENCH_MAPS=0 leaves it out. The daemon runs its default number of workers (one per CPU);
// BENCH_MAPS_WORKERS=N sets smmapd_workers (on 2 CPUs shared with the directory and the
// load generator, one worker batches more queries per write); BENCH_BUSY_POLL=N sets
// smmapd_busy_poll (0: off, to see what it buys).
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  directoriesMissing, LDAP_ADMIN, pgSql, startLdap, startMysql, startPg, stopLdap, stopMysql, stopPg,
} from '../test/helpers/directories';
import { freePort, SMMAPCTL, waitForPort } from '../test/helpers/base';

export interface MapsBenchDeps {
  readonly smloadBin: string;
  readonly withDaemon: <T>(conf: string, fn: (target: string) => T | Promise<T>) => Promise<T>;
  /** Alternating rounds against a peer (medians). */
  readonly rounds: number;
}

const WORKERS = process.env.BENCH_MAPS_WORKERS ? `smmapd_workers: ${Number(process.env.BENCH_MAPS_WORKERS)}\n` : '';
const BUSY_POLL = process.env.BENCH_BUSY_POLL ? `smmapd_busy_poll: ${Number(process.env.BENCH_BUSY_POLL)}\n` : '';

/** Entries in each directory; the keys are 80% of them and 20% misses. */
const ENTRIES = 10_000;

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  tally: string;
}

function smload(bin: string, target: string, map: string, keyFile: string, conns: number, secs: number): Load {
  const out = execFileSync(bin, [target, map, keyFile, String(conns), String(secs)], { encoding: 'utf8' });
  const f = (k: string): number => Number(new RegExp(`${k}=([0-9.]+)`).exec(out)?.[1] ?? NaN);
  return { rps: f('rps'), p50: f('p50_us'), p99: f('p99_us'), errors: f('errors'), tally: `ok=${f('ok')} notfound=${f('notfound')} temp=${f('temp')}` };
}

export async function mapsBench(deps: MapsBenchDeps, seconds: number): Promise<void> {
  const missing = directoriesMissing();
  if (missing !== null) {
    console.log(`\ndirectory maps: skipped (needs ${missing})`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'smmapd-bench-maps-'));
  chmodSync(dir, 0o755);
  const peerOnly = process.env.BENCH_ONLY === 'sockmapd';
  const my = await startMysql(join(dir, 'my'), await freePort());
  const pg = peerOnly ? null : await startPg(join(dir, 'pg'), await freePort());
  const ldap = peerOnly ? null : await startLdap(join(dir, 'ldap'), await freePort());
  try {
    if (pg !== null) pgSql(pg.port, `CREATE TABLE aliases (alias text PRIMARY KEY, goto text NOT NULL);
      INSERT INTO aliases SELECT 'u' || i || '@example.com', 'user' || i || '@mail.example.com' FROM generate_series(0, ${ENTRIES - 1}) i;
      ANALYZE aliases;`);
    const rows = Array.from({ length: ENTRIES }, (_, i) => `('u${i}@example.com','user${i}@mail.example.com')`);
    execFileSync('mariadb', ['-h', '127.0.0.1', '-P', String(my.port), '-u', 'root', 'mail'], {
      // postfix@localhost: the same user over the unix socket
      input: `CREATE TABLE aliases (alias varchar(255) PRIMARY KEY, goto varchar(255) NOT NULL) DEFAULT CHARSET=utf8mb4;\nINSERT INTO aliases VALUES ${rows.join(',')};\n`
        + "CREATE USER 'postfix'@'localhost' IDENTIFIED BY 'pw'; GRANT SELECT ON mail.* TO 'postfix'@'localhost';\n",
    });
    const ldif = ['dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example',
      'dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people'];
    for (let i = 0; i < ENTRIES; i++) {
      ldif.push(`dn: uid=u${i},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: u${i}\ncn: u${i}\nsn: U\nmail: u${i}@example.com\ndescription: user${i}@mail.example.com`);
    }
    if (ldap !== null) execFileSync('ldapadd', ['-x', '-H', `ldap://127.0.0.1:${ldap.port}`, '-D', LDAP_ADMIN.dn, '-w', LDAP_ADMIN.password], { input: `${ldif.join('\n\n')}\n`, stdio: ['pipe', 'ignore', 'inherit'] });
    writeFileSync(join(dir, 'pg.cf'), `hosts = inet:127.0.0.1:${pg?.port ?? 1}\nuser = postgres\ndbname = postgres\nquery = SELECT goto FROM aliases WHERE alias='%s'\n`);
    // the query sockmapd sends for a map with only `key` set: the same SQL, the same answers
    const myCf = (hosts: string): string => `hosts = ${hosts}\nuser = postfix\npassword = pw\ndbname = mail\nquery = SELECT alias FROM aliases WHERE alias = '%s'\n`;
    // mode 0600: a password is in them (smmapd warns otherwise)
    writeFileSync(join(dir, 'my.cf'), myCf(`inet:127.0.0.1:${my.port}`), { mode: 0o600 });
    writeFileSync(join(dir, 'my-sock.cf'), myCf(`unix:${my.dir}/sock`), { mode: 0o600 });
    writeFileSync(join(dir, 'ldap.cf'), `server_host = ldap://127.0.0.1:${ldap?.port ?? 1}\nsearch_base = ou=people,dc=example,dc=com\nquery_filter = (mail=%s)\nresult_attribute = description\nversion = 3\n`);
    const keys: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const u = (i * 7919) % ENTRIES;
      keys.push(i % 5 === 0 ? `nosuch${u}@example.com` : `u${u}@example.com`);
    }
    const keyFile = join(dir, 'keys.txt');
    writeFileSync(keyFile, `${keys.join('\n')}\n`);
    const conf = (name: string, extra: string): string => {
      const file = join(dir, `${name}.conf`);
      writeFileSync(file, `configdirectory: ${dir}\nsmmapd_store: ${dir}/smmapd.db\nsmmapd_map_pg: pgsql:${dir}/pg.cf\nsmmapd_map_my: mysql:${dir}/my.cf\nsmmapd_map_mysock: mysql:${dir}/my-sock.cf\nsmmapd_map_ldap: ldap:${dir}/ldap.cf\nsmmapd_maps_pool_size: 8\n${WORKERS}${BUSY_POLL}${extra}\n`);
      return file;
    };
    // the mailbox store exists (empty): requests for other map names still find it
    execFileSync(process.execPath, [SMMAPCTL, '-C', conf('init', ''), 'init']);
    console.log(`\ndirectory maps: ${peerOnly ? 'a MariaDB 10.11 table' : 'PostgreSQL 15 and MariaDB 10.11 tables and slapd (mdb)'} with ${ENTRIES} entries, keys 80% hit, 20% miss, ${seconds} s each`);
    if (!peerOnly) console.log(`${'map'.padEnd(28)} conns       rps   p50_us   p99_us errors`);
    const tables = peerOnly ? [] : ([['uncached', conf('uncached', '')], ['cached', conf('cached', 'smmapd_maps_cache_ttl: 300\nsmmapd_maps_negative_cache_ttl: 300')]] as const);
    for (const [label, c] of tables) {
      await deps.withDaemon(c, (target) => {
        for (const map of ['pg', 'my', 'ldap']) {
          smload(deps.smloadBin, target, map, keyFile, 8, 2); // warm-up: connections open (and, cached, the cache filled)
          for (const conns of [1, 8]) {
            const l = smload(deps.smloadBin, target, map, keyFile, conns, seconds);
            const name = `${{ pg: 'pgsql', my: 'mysql' }[map] ?? map} (${label})`;
            console.log(`${name.padEnd(28)} ${String(conns).padStart(5)} ${l.rps.toFixed(0).padStart(9)} ${l.p50.toFixed(0).padStart(8)} ${l.p99.toFixed(0).padStart(8)} ${String(l.errors).padStart(6)}   ${l.tally}`);
          }
        }
      });
    }
    await sockmapdSection(deps, seconds, dir, my.port, keyFile, conf('peer', ''));
  } finally {
    if (pg !== null) stopPg(pg);
    if (ldap !== null) await stopLdap(ldap);
    await stopMysql(my);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** smmapd's mysql map (uncached) and sockmapd on the same MariaDB table and keys, alternating rounds, medians (and each round's ratio). */
async function sockmapdSection(deps: MapsBenchDeps, seconds: number, dir: string, myPort: number, keyFile: string, conf: string): Promise<void> {
  const bin = process.env.SOCKMAPD ?? '';
  if (bin === '' || !existsSync(bin)) {
    console.log('\nsockmapd: skipped (SOCKMAPD=/path/to/sockmapd runs it side by side; README "Performance" says how to build it)');
    return;
  }
  const port = await freePort();
  // sockmapd's own configuration: one database host, a map whose query is SELECT alias ... WHERE alias = 'KEY'
  writeFileSync(join(dir, 'sockmapd.json'), JSON.stringify({
    database: { host: ['127.0.0.1'], port: String(myPort), username: 'postfix', password: 'pw' },
    sysconfig: { run_as_user: '', run_as_group: '', port: String(port), logfile: join(dir, 'sockmapd.log') },
    postmaps: [{ service: 'my', database: 'mail', table: 'aliases', key: 'alias' }],
  }));
  const peer = spawn(bin, ['-c', join(dir, 'sockmapd.json')], { stdio: 'ignore', cwd: dir });
  const median = (xs: Load[]): Load => [...xs].sort((a, b) => a.rps - b.rps)[Math.floor(xs.length / 2)]!;
  try {
    await waitForPort(port);
    await deps.withDaemon(conf, (target) => {
      console.log(`\nmysql map, uncached, side by side with sockmapd (${deps.rounds} alternating rounds of ${seconds} s, medians)`);
      console.log(`${'server'.padEnd(28)} conns       rps   p50_us   p99_us errors`);
      smload(deps.smloadBin, target, 'my', keyFile, 8, 2); // warm-up: pools open
      smload(deps.smloadBin, target, 'mysock', keyFile, 8, 2);
      smload(deps.smloadBin, `127.0.0.1:${port}`, 'my', keyFile, 1, 2);
      const servers = [
        ['smmapd mysql (uncached)', target, 'my'],
        ['smmapd mysql, unix socket', target, 'mysock'],
        ['sockmapd', `127.0.0.1:${port}`, 'my'],
      ] as const;
      for (const conns of [1, 8]) {
        const loads: Load[][] = servers.map(() => []);
        for (let r = 0; r < deps.rounds; r++) {
          servers.forEach(([, t, map], i) => loads[i]!.push(smload(deps.smloadBin, t, map, keyFile, conns, seconds)));
        }
        const medians = loads.map(median);
        servers.forEach(([name], i) => {
          const l = medians[i]!;
          console.log(`${name.padEnd(28)} ${String(conns).padStart(5)} ${l.rps.toFixed(0).padStart(9)} ${l.p50.toFixed(0).padStart(8)} ${l.p99.toFixed(0).padStart(8)} ${String(l.errors).padStart(6)}   ${l.tally}`);
        });
        const [tcp, sock, theirs] = medians as [Load, Load, Load];
        // each round's ratio too: the rounds of one server are minutes apart, and this VM drifts
        const paired = (i: number): string => {
          const rs = loads[i]!.map((l, r) => l.rps / loads[2]![r]!.rps).sort((a, b) => a - b);
          return `${rs[Math.floor(rs.length / 2)]!.toFixed(2)}x (rounds ${rs.map((x) => x.toFixed(2)).join(' ')})`;
        };
        console.log(`ratio at ${conns} conn: ${(tcp.rps / theirs.rps).toFixed(2)}x sockmapd's throughput over TCP, ${(sock.rps / theirs.rps).toFixed(2)}x over the unix socket`);
        console.log(`  median of the rounds' own ratios: TCP ${paired(0)}, socket ${paired(1)}`);
      }
    });
  } finally {
    peer.kill('SIGTERM');
  }
}
