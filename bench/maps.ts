// The directory maps in `npm run bench` (root and Debian's postgresql and slapd needed):
// lookups per second through a PostgreSQL map and an LDAP map at 1 and 8 connections, with
// the answer cache off (every lookup asks the directory) and on (smmapd_maps_cache_ttl).
// BENCH_ONLY=maps runs this section alone; BENCH_MAPS=0 leaves it out.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { directoriesMissing, LDAP_ADMIN, pgSql, startLdap, startPg, stopLdap, stopPg } from '../test/helpers/directories';
import { freePort, SMMAPCTL } from '../test/helpers/harness';

export interface MapsBenchDeps {
  readonly smloadBin: string;
  readonly withDaemon: <T>(conf: string, fn: (target: string) => T | Promise<T>) => Promise<T>;
}

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
  const pg = await startPg(join(dir, 'pg'), await freePort());
  const ldap = await startLdap(join(dir, 'ldap'), await freePort());
  try {
    pgSql(pg.port, `CREATE TABLE aliases (alias text PRIMARY KEY, goto text NOT NULL);
      INSERT INTO aliases SELECT 'u' || i || '@example.com', 'user' || i || '@mail.example.com' FROM generate_series(0, ${ENTRIES - 1}) i;
      ANALYZE aliases;`);
    const ldif = ['dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example',
      'dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people'];
    for (let i = 0; i < ENTRIES; i++) {
      ldif.push(`dn: uid=u${i},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: u${i}\ncn: u${i}\nsn: U\nmail: u${i}@example.com\ndescription: user${i}@mail.example.com`);
    }
    execFileSync('ldapadd', ['-x', '-H', `ldap://127.0.0.1:${ldap.port}`, '-D', LDAP_ADMIN.dn, '-w', LDAP_ADMIN.password], { input: `${ldif.join('\n\n')}\n`, stdio: ['pipe', 'ignore', 'inherit'] });
    writeFileSync(join(dir, 'pg.cf'), `hosts = inet:127.0.0.1:${pg.port}\nuser = postgres\ndbname = postgres\nquery = SELECT goto FROM aliases WHERE alias='%s'\n`);
    writeFileSync(join(dir, 'ldap.cf'), `server_host = ldap://127.0.0.1:${ldap.port}\nsearch_base = ou=people,dc=example,dc=com\nquery_filter = (mail=%s)\nresult_attribute = description\nversion = 3\n`);
    const keys: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const u = (i * 7919) % ENTRIES;
      keys.push(i % 5 === 0 ? `nosuch${u}@example.com` : `u${u}@example.com`);
    }
    const keyFile = join(dir, 'keys.txt');
    writeFileSync(keyFile, `${keys.join('\n')}\n`);
    const conf = (name: string, extra: string): string => {
      const file = join(dir, `${name}.conf`);
      writeFileSync(file, `configdirectory: ${dir}\nsmmapd_store: ${dir}/smmapd.db\nsmmapd_map_pg: pgsql:${dir}/pg.cf\nsmmapd_map_ldap: ldap:${dir}/ldap.cf\nsmmapd_maps_pool_size: 8\n${extra}\n`);
      return file;
    };
    // the mailbox store exists (empty): requests for other map names still find it
    execFileSync(process.execPath, [SMMAPCTL, '-C', conf('init', ''), 'init']);
    console.log(`\ndirectory maps: PostgreSQL 15 table and slapd (mdb) with ${ENTRIES} entries each, keys 80% hit, 20% miss, ${seconds} s each`);
    console.log(`${'map'.padEnd(28)} conns       rps   p50_us   p99_us errors`);
    for (const [label, c] of [['uncached', conf('uncached', '')], ['cached', conf('cached', 'smmapd_maps_cache_ttl: 300\nsmmapd_maps_negative_cache_ttl: 300')]] as const) {
      await deps.withDaemon(c, (target) => {
        for (const map of ['pg', 'ldap']) {
          smload(deps.smloadBin, target, map, keyFile, 8, 2); // warm-up: connections open (and, cached, the cache filled)
          for (const conns of [1, 8]) {
            const l = smload(deps.smloadBin, target, map, keyFile, conns, seconds);
            const name = `${map === 'pg' ? 'pgsql' : 'ldap'} (${label})`;
            console.log(`${name.padEnd(28)} ${String(conns).padStart(5)} ${l.rps.toFixed(0).padStart(9)} ${l.p50.toFixed(0).padStart(8)} ${l.p99.toFixed(0).padStart(8)} ${String(l.errors).padStart(6)}   ${l.tally}`);
          }
        }
      });
    }
  } finally {
    stopPg(pg);
    await stopLdap(ldap);
    rmSync(dir, { recursive: true, force: true });
  }
}
