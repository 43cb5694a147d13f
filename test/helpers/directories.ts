// Private PostgreSQL, MariaDB and OpenLDAP servers on loopback ports for the directory-map
// tests, started from Debian's packages in a temp dir (as the Cyrus helper starts Cyrus),
// each seeded with the same example aliases and people, plus an SQLite file with the same
// aliases. Stop only what was started here (by data directory / pid file).
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
// base.ts, not suite.ts: bench/ runs this under plain node (no vitest)
import { haveCommand, runAsync, waitForPort } from './base';

const PG_ROOT = '/usr/lib/postgresql';
export const PGBIN = existsSync(PG_ROOT)
  ? join(PG_ROOT, readdirSync(PG_ROOT).sort((a, b) => Number(a) - Number(b)).pop() ?? '', 'bin')
  : '';

function run(cmd: string, args: readonly string[], input?: string, cwd?: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { input, cwd, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r;
}

/** run() for what takes seconds (initdb, a server's start): the test worker's event loop keeps turning. */
async function runSlow(cmd: string, args: readonly string[]): Promise<void> {
  const r = await runAsync(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
}

const asUser = (user: string, command: string): Promise<void> => runSlow('su', [user, '-s', '/bin/sh', '-c', command]);
const uidOf = (user: string): number => Number(run('id', ['-u', user]).stdout.trim());

/** What is missing for the directory tests, or null. */
export function directoriesMissing(): string | null {
  if (PGBIN === '' || !existsSync(join(PGBIN, 'initdb'))) return 'PostgreSQL (initdb)';
  if (!haveCommand('mariadbd') && !existsSync('/usr/sbin/mariadbd')) return 'MariaDB (mariadbd)';
  if (!existsSync('/usr/sbin/slapd') || !haveCommand('ldapadd')) return 'slapd and ldap-utils';
  if (!haveCommand('postmap')) return 'Postfix (postmap)';
  const m = spawnSync('postconf', ['-c', postfixConfigDir(), '-m'], { encoding: 'utf8' }).stdout ?? '';
  for (const t of ['pgsql', 'mysql', 'sqlite', 'ldap']) if (!m.split('\n').includes(t)) return `postfix-${t}`;
  if (process.getuid?.() !== 0) return 'root (to run the servers as their users)';
  return null;
}

/** An empty Postfix configuration directory for `postmap -c` (made again if something swept /tmp meanwhile). */
export function postfixConfigDir(): string {
  const dir = '/tmp/smmapd-directories-postfix-cf';
  if (!existsSync(join(dir, 'main.cf'))) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'main.cf'), '');
  }
  return dir;
}

/** `postmap -c DIR -f -q KEY TYPE:FILE` as the reply Postfix's table means: `OK value`, `NOTFOUND`, or `ERROR`. */
export async function postmapAnswer(map: string, key: string): Promise<string> {
  const first = await postmapOnce(map, key);
  // a postmap that could not even start (fork refused on a loaded machine) is asked again
  return first === 'SPAWN' ? ((await postmapOnce(map, key)).replace('SPAWN', 'ERROR')) : first;
}

function postmapOnce(map: string, key: string): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn('postmap', ['-c', postfixConfigDir(), '-f', '-q', key, map]);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    p.on('error', () => resolve('SPAWN'));
    p.on('close', (status) => resolve(status === null ? 'SPAWN' : postmapVerdict(status, Buffer.concat(out), Buffer.concat(err))));
  });
}

function postmapVerdict(status: number | null, stdout: Buffer, stderr: Buffer): string {
  const r = { status, stdout, stderr };
  if (r.status === 0) return `OK ${r.stdout.toString('utf8').replace(/\n$/, '')}`;
  // exit 1 is also postmap's msg_fatal() ("query error"): that is the directory failing
  if (r.status === 1 && !/fatal:/.test(r.stderr.toString())) return 'NOTFOUND';
  return 'ERROR';
}

// ---- PostgreSQL ----

export interface Pg {
  readonly dir: string;
  readonly port: number;
}

/**
 * initdb (UTF8, trust on loopback) and start on `port`; `dir` must be reachable by user
 * postgres. `tls`: TLS on (a certificate for 127.0.0.1 from a private CA, `dir`/tls/ca.pem)
 * and a role `tlsonly` that may log in over TLS only.
 */
export async function startPg(dir: string, port: number, opts: { tls?: boolean } = {}): Promise<Pg> {
  mkdirSync(dir, { recursive: true });
  chownSync(dir, uidOf('postgres'), 0);
  if (!existsSync(join(dir, 'data'))) {
    await asUser('postgres', `${PGBIN}/initdb -D ${dir}/data -A trust -U postgres -E UTF8 --locale=C >/dev/null`);
    if (opts.tls) {
      makeCertificates(join(dir, 'tls'));
      for (const f of ['server.key', 'server.pem']) {
        chownSync(join(dir, 'tls', f), uidOf('postgres'), 0);
        chmodSync(join(dir, 'tls', f), 0o600);
      }
      chmodSync(join(dir, 'tls'), 0o755);
      writeFileSync(join(dir, 'data', 'postgresql.conf'), `${readFileSync(join(dir, 'data', 'postgresql.conf'), 'utf8')}\nssl = on\nssl_cert_file = '${dir}/tls/server.pem'\nssl_key_file = '${dir}/tls/server.key'\n`);
      const hba = join(dir, 'data', 'pg_hba.conf');
      writeFileSync(hba, `hostssl all tlsonly 127.0.0.1/32 trust\nhostnossl all tlsonly 127.0.0.1/32 reject\n${readFileSync(hba, 'utf8')}`);
    }
  }
  await resumePg({ dir, port });
  if (opts.tls) pgSql(port, 'CREATE ROLE tlsonly LOGIN;');
  return { dir, port };
}

export async function resumePg(pg: Pg): Promise<void> {
  await asUser('postgres', `${PGBIN}/pg_ctl -D ${pg.dir}/data -l ${pg.dir}/log -o '-p ${pg.port} -k ${pg.dir} -c listen_addresses=127.0.0.1 -c fsync=off' -w start >/dev/null`);
  await waitForPort(pg.port);
}

export function stopPg(pg: Pg): void {
  spawnSync('su', ['postgres', '-s', '/bin/sh', '-c', `${PGBIN}/pg_ctl -D ${pg.dir}/data -m immediate stop >/dev/null 2>&1`]);
}

export function pgSql(port: number, sql: string): string {
  return run('psql', ['-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1'], sql).stdout;
}

/** The example aliases: several results, quotes, backslashes, %, _, mixed case, UTF-8, inactive, a catch-all, an empty value. */
export const ALIASES: ReadonlyArray<readonly [string, string, boolean]> = [
  ['info@example.com', 'fred@example.com', true],
  ['team@example.com', 'fred@example.com', true],
  ['team@example.com', 'barney@example.com', true],
  ['team@example.com', 'wilma@example.org', true],
  ["o'brien@example.com", 'obrien@example.com', true],
  ['back\\slash@example.com', 'bs@example.com', true],
  ['pct%50@example.com', 'pct@example.com', true],
  ['under_score@example.com', 'us@example.com', true],
  ['Mixed@Example.com', 'mixed@example.com', true],
  ['jürgen@example.com', 'juergen@example.com', true],
  ['gone@example.com', 'nobody@example.com', false],
  ['@example.net', 'catchall@example.net', true],
  ['empty@example.com', '', true],
  ['"quoted"@example.com', 'q@example.com', true],
  ['fred', 'fred@example.com', true],
  ['list@sub.example.com', 'a@example.com', true],
  ['list@sub.example.com', 'b', true],
  ['list@sub.example.com', '@example.org', true],
];

const sqlText = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const myText = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

export function seedPg(port: number): void {
  pgSql(
    port,
    `CREATE TABLE aliases (alias text NOT NULL, goto text NOT NULL, active boolean NOT NULL DEFAULT true);
     INSERT INTO aliases VALUES ${ALIASES.map(([a, g, on]) => `(${sqlText(a)}, ${sqlText(g)}, ${on})`).join(', ')};
     CREATE TABLE domains (domain text PRIMARY KEY);
     INSERT INTO domains VALUES ('example.com'), ('example.net');`,
  );
}

// ---- MariaDB ----

export interface My {
  readonly dir: string;
  readonly port: number;
  /** More mariadbd options (TLS). */
  readonly args?: readonly string[];
}

/**
 * A private MariaDB: database `mail`, user postfix/pw with SELECT only. `tls`: TLS on, with a
 * certificate for 127.0.0.1 from a private CA (`dir`/tls/ca.pem).
 */
export async function startMysql(dir: string, port: number, opts: { tls?: boolean } = {}): Promise<My> {
  mkdirSync(dir, { recursive: true });
  chownSync(dir, uidOf('mysql'), 0);
  await runSlow('mariadb-install-db', ['--user=mysql', `--datadir=${dir}/data`, '--auth-root-authentication-method=normal', '--skip-test-db']);
  let args: string[] = [];
  if (opts.tls) {
    makeCertificates(join(dir, 'tls'));
    chownSync(join(dir, 'tls', 'server.key'), uidOf('mysql'), 0);
    args = [`--ssl-ca=${dir}/tls/ca.pem`, `--ssl-cert=${dir}/tls/server.pem`, `--ssl-key=${dir}/tls/server.key`];
  }
  const my = { dir, port, args };
  await resumeMysql(my);
  run('mariadb', ['-h', '127.0.0.1', '-P', String(port), '-u', 'root', '-e',
    "CREATE DATABASE mail; CREATE USER 'postfix'@'127.0.0.1' IDENTIFIED BY 'pw'; GRANT SELECT ON mail.* TO 'postfix'@'127.0.0.1';"]);
  return my;
}

export async function resumeMysql(my: My): Promise<void> {
  const p = spawn('mariadbd', ['--user=mysql', `--datadir=${my.dir}/data`, `--socket=${my.dir}/sock`, `--port=${my.port}`, '--bind-address=127.0.0.1', `--pid-file=${my.dir}/pid`, ...(my.args ?? [])], {
    stdio: 'ignore',
    detached: true,
  });
  p.unref();
  await waitForPort(my.port, 60_000);
}

export async function stopMysql(my: My): Promise<void> {
  const pidFile = join(my.dir, 'pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 200 && existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
}

export function seedMysql(port: number): void {
  run('mariadb', ['-h', '127.0.0.1', '-P', String(port), '-u', 'root', 'mail'],
    `CREATE TABLE aliases (alias varchar(400) NOT NULL, goto varchar(400) NOT NULL, active tinyint(1) NOT NULL DEFAULT 1) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
     INSERT INTO aliases VALUES ${ALIASES.map(([a, g, on]) => `(${myText(a)}, ${myText(g)}, ${on ? 1 : 0})`).join(', ')};`);
}

// ---- SQLite ----

/** The same aliases in an SQLite file (written with better-sqlite3, which the daemon ships). */
export function seedSqlite(path: string): void {
  const Database = require('better-sqlite3') as typeof import('better-sqlite3');
  const db = new Database(path);
  db.exec('CREATE TABLE aliases (alias text NOT NULL, goto text NOT NULL, active integer NOT NULL DEFAULT 1)');
  const ins = db.prepare('INSERT INTO aliases VALUES (?, ?, ?)');
  for (const [a, g, on] of ALIASES) ins.run(a, g, on ? 1 : 0);
  db.close();
  chmodSync(path, 0o644);
}

// ---- OpenLDAP ----

export interface Ldap {
  readonly dir: string;
  readonly port: number;
  /** ldaps:// port (STARTTLS on `port` too), 0 without TLS. */
  readonly ldapsPort: number;
  /** The CA that signed slapd's certificate (127.0.0.1, localhost), '' without TLS. */
  readonly caFile: string;
  /** ldapi:// URL of its unix socket, '' without one. */
  readonly ldapi: string;
}

/** A CA and a server certificate it signs (`san`: 127.0.0.1 and localhost unless told), with openssl. Returns the CA file. */
export function makeCertificates(dir: string, san = 'IP:127.0.0.1,DNS:localhost'): string {
  mkdirSync(dir, { recursive: true });
  const ssl = (args: string[]): void => void run('openssl', args, undefined, dir);
  ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=smmapd test CA']);
  ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(dir, 'ext.cnf'), `subjectAltName=${san}\n`);
  ssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf']);
  return join(dir, 'ca.pem');
}

export const LDAP_ADMIN = { dn: 'cn=admin,dc=example,dc=com', password: 'secret' } as const;

/**
 * slapd with an mdb database; `tls`: also ldaps:// on another port and STARTTLS, with a
 * certificate from a private CA (for `san`, default 127.0.0.1 and localhost); `ldapi`: also a
 * unix socket (SASL EXTERNAL); `plain`: SASL PLAIN checked against userPassword of uid=NAME.
 */
export async function startLdap(dir: string, port: number, opts: { tls?: boolean; ldapsPort?: number; san?: string; ldapi?: boolean; plain?: boolean } = {}): Promise<Ldap> {
  mkdirSync(join(dir, 'db'), { recursive: true });
  const caFile = opts.tls ? makeCertificates(join(dir, 'tls'), opts.san) : '';
  const sasl = opts.plain ? 'sasl-secprops noanonymous\nauthz-regexp uid=([^,]*),cn=[^,]*,cn=auth uid=$1,ou=people,dc=example,dc=com\n' : '';
  const tlsConf = opts.tls
    ? `TLSCACertificateFile ${caFile}\nTLSCertificateFile ${dir}/tls/server.pem\nTLSCertificateKeyFile ${dir}/tls/server.key\n`
    : '';
  writeFileSync(
    join(dir, 'slapd.conf'),
    `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile ${dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
suffix "dc=example,dc=com"
rootdn "${LDAP_ADMIN.dn}"
rootpw ${LDAP_ADMIN.password}
directory ${dir}/db
index mail eq
# without these, a search scans every entry (10,000 take ~20 ms each) and every add syncs
index uid,objectClass eq
dbnosync
access to attrs=userPassword by anonymous auth by * none
access to * by * read
${sasl}${tlsConf}`,
  );
  const ldap = { dir, port, ldapsPort: opts.tls ? (opts.ldapsPort ?? 0) : 0, caFile, ldapi: opts.ldapi ? `ldapi://${encodeURIComponent(join(dir, 'ldapi'))}` : '' };
  await resumeLdap(ldap);
  return ldap;
}

export async function resumeLdap(l: Ldap): Promise<void> {
  const urls = [`ldap://127.0.0.1:${l.port}/`, ...(l.ldapsPort ? [`ldaps://127.0.0.1:${l.ldapsPort}/`] : []), ...(l.ldapi ? [`${l.ldapi}/`] : [])];
  run('/usr/sbin/slapd', ['-f', join(l.dir, 'slapd.conf'), '-h', urls.join(' ')]);
  await waitForPort(l.port);
}

export async function stopLdap(l: Ldap): Promise<void> {
  const pidFile = join(l.dir, 'slapd.pid');
  if (!existsSync(pidFile)) return;
  try {
    process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 200 && existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
}

/** An LDIF line; a non-ASCII value base64-encoded (`::`), as RFC 2849 wants. */
const attr = (name: string, v: string): string => (/[^\x20-\x7e]/.test(v) ? `${name}:: ${Buffer.from(v).toString('base64')}` : `${name}: ${v}`);

const person = (uid: string, sn: string, mails: readonly string[], descriptions: readonly string[]): string =>
  [`dn: uid=${uid},ou=people,dc=example,dc=com`, 'objectClass: inetOrgPerson', `uid: ${uid}`, `cn: ${uid}`, attr('sn', sn),
    ...mails.map((m) => attr('mail', m)), ...descriptions.map((d) => attr('description', d))].join('\n');

export function seedLdap(port: number): void {
  const ldif = [
    'dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example',
    'dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people',
    person('fred', 'Flintstone', ['fred@example.com', 'info@example.com'], ['fred@mail.example.com']),
    person('barney', 'Rubble', ['barney@example.com', 'team@example.com'], ['barney@mail.example.com']),
    person('wilma', 'Flintstone', ['team@example.com', "o'brien@example.com"], ['wilma@mail.example.com', 'wilma@backup.example.com']),
    person('star', 'Star', ['st*r@example.com'], ['star@mail.example.com']),
    person('paren', 'Paren', ['p(a)ren@example.com'], ['paren@mail.example.com']),
    person('bs', 'Backslash', ['back\\slash@example.com'], ['bs@mail.example.com']),
    person('juergen', 'Jürgen', ['juergen@example.com'], ['jürgen@mail.example.com', 'ü']),
    person('nodesc', 'Nodesc', ['nodesc@example.com'], []),
  ].join('\n\n');
  run('ldapadd', ['-x', '-H', `ldap://127.0.0.1:${port}`, '-D', LDAP_ADMIN.dn, '-w', LDAP_ADMIN.password], `${ldif}\n`);
}

/**
 * The keys every directory test asks: found, not found, several results, quotes,
 * backslashes, %, _, *, )(, SQL and LDAP injection attempts, 300-byte keys, UTF-8, leading
 * and trailing spaces, keys without a domain, template characters.
 */
export const DIR_KEYS: readonly string[] = [
  'info@example.com', 'team@example.com', "o'brien@example.com", 'back\\slash@example.com', 'pct%50@example.com',
  'under_score@example.com', 'underXscore@example.com', 'Mixed@Example.com', 'mixed@example.com', 'jürgen@example.com',
  'gone@example.com', 'someone@example.net', 'nosuch@example.com', 'empty@example.com', 'fred@example.com',
  'barney@example.com', 'st*r@example.com', '*', "' OR '1'='1", "x' OR alias LIKE '%", ')(uid=*', '*)(mail=*',
  'a@b@example.com', `${'x'.repeat(300)}@example.com`, ' ', 'fred@example.com ', '%s', '%u@%d',
  // more of the same kinds
  '"quoted"@example.com', '\\"quoted\\"@example.com', "o''brien@example.com", "o\\'brien@example.com", 'back\\\\slash@example.com',
  'pct%@example.com', '%', '%%', '_', 'under%score@example.com', 'st\\2ar@example.com', 'p(a)ren@example.com', '*@example.com',
  'fred*', '(mail=*)', '*)(|(mail=*)(mail=*', "'; DROP TABLE aliases; --", "x'; SELECT pg_sleep(5); --", "\\'; --",
  "' UNION SELECT version() --", 'x\\', "'", '"', "1' OR '1'='1' #", 'admin)(&)', '\\2a', '\\', '\\00',
  `${"'".repeat(300)}`, `${'\\'.repeat(150)}@example.com`, `${'ü'.repeat(150)}@example.com`, `${'x'.repeat(300)}`,
  '日本@example.com', 'ü', 'jÜrgen@example.com', '😀@example.com',
  ' fred@example.com', 'info@example.com  ', 'fred@example.com\t', 'tab\tkey@example.com', 'line\nbreak@example.com',
  'fred', 'info', 'postmaster', '@example.net', '@example.com', 'x@', '@', 'user@', 'list@sub.example.com',
  'a@example', 'a@.example.com', 'a@example..com', 'a@example.com.', 'info@EXAMPLE.COM', 'INFO@example.com',
  '%1', '%[1-9]', '%S%U%D',
  // characters with a meaning in LDAP filters other than the escaped ones
  'a=b@example.com', 'fred@example.com)(mail=*', 'x~=y', 'a>=b', 'a<=b', '&', '|', '!', '(', ')', '=', ':dn:', 'a:=b',
];

const ldif = (dn: string, ...lines: string[]): string => [`dn: ${dn}`, ...lines].join('\n');
const BASE = 'dc=example,dc=com';

/**
 * What ldap_table(5)'s less common parameters need, added to a seeded slapd: an alias entry
 * (dereference), groups of people and of groups, a loop, LDAP URL members (special, leaf and
 * terminal result attributes), a referral to `referTo` (chase_referrals) and fred's password
 * (SASL PLAIN).
 */
export function seedLdapExtras(port: number, referTo: number): void {
  const g = (cn: string, ...lines: string[]): string =>
    ldif(`cn=${cn},ou=groups,${BASE}`, 'objectClass: groupOfNames', 'objectClass: extensibleObject', `cn: ${cn}`, ...lines);
  const m = (who: string): string => `member: ${who.includes('=') ? who : `uid=${who},ou=people,${BASE}`}`;
  const entries = [
    ldif(`ou=aliases,${BASE}`, 'objectClass: organizationalUnit', 'ou: aliases'),
    ldif(`uid=fredalias,ou=aliases,${BASE}`, 'objectClass: alias', 'objectClass: extensibleObject', 'uid: fredalias', `aliasedObjectName: uid=fred,ou=people,${BASE}`),
    ldif(`ou=groups,${BASE}`, 'objectClass: organizationalUnit', 'ou: groups'),
    g('all', 'mail: all@example.com', 'description: all-owner@example.com', m(`cn=staff,ou=groups,${BASE}`), m('fred'), m('ghost')),
    g('staff', 'mail: staff@example.com', m('barney'), m('wilma')),
    g('term', 'mail: term@example.com', 'title: term-owner@example.com', 'description: term-desc@example.com', m('fred')),
    g('url', 'mail: url@example.com', m('nodesc'), `labeledURI: ldap:///ou=people,${BASE}??one?(sn=Flintstone)`),
    g('urlattr', 'mail: urlattr@example.com', m('nodesc'), `labeledURI: ldap:///ou=people,${BASE}?mail?one?(sn=Rubble)`),
    g('loop1', 'mail: loop@example.com', m(`cn=loop2,ou=groups,${BASE}`)),
    g('loop2', m(`cn=loop1,ou=groups,${BASE}`)),
    g('badurl', 'mail: badurl@example.com', m('nodesc'), `labeledURI: ldap:///ou=people,${BASE}??bogus?(sn=x)`),
    ldif(`ou=remote,${BASE}`, 'objectClass: referral', 'objectClass: extensibleObject', 'ou: remote', `ref: ldap://127.0.0.1:${referTo}/ou=remote,${BASE}`),
  ].join('\n\n');
  run('ldapadd', ['-x', '-M', '-H', `ldap://127.0.0.1:${port}`, '-D', LDAP_ADMIN.dn, '-w', LDAP_ADMIN.password], `${entries}\n`);
  run('ldapmodify', ['-x', '-H', `ldap://127.0.0.1:${port}`, '-D', LDAP_ADMIN.dn, '-w', LDAP_ADMIN.password],
    `dn: uid=fred,ou=people,${BASE}\nchangetype: modify\nadd: userPassword\nuserPassword: fredpw\n`);
}

/** The other end of the referral: ou=remote with one person. */
export function seedLdapRemote(port: number): void {
  const entries = [
    'dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example',
    ldif(`ou=remote,${BASE}`, 'objectClass: organizationalUnit', 'ou: remote'),
    person('remo', 'Remote', ['remo@example.com'], ['remo@far.example.com']).replace('ou=people', 'ou=remote'),
  ].join('\n\n');
  run('ldapadd', ['-x', '-H', `ldap://127.0.0.1:${port}`, '-D', LDAP_ADMIN.dn, '-w', LDAP_ADMIN.password], `${entries}\n`);
}

/** SQL run as MariaDB's root in database `mail` (tables for a test of its own). */
export function mysqlSql(port: number, sql: string): string {
  return run('mariadb', ['-h', '127.0.0.1', '-P', String(port), '-u', 'root', '-N', 'mail'], sql).stdout;
}
