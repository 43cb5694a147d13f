// Every answer-changing parameter of Postfix 3.7's ldap_table(5), pgsql_table(5),
// mysql_table(5) and sqlite_table(5), one differential case each: the same .cf file asked of
// `postmap -f -q KEY TYPE:FILE` and of `smmapctl query --map` against the same real servers
// (two slapds, one with TLS for 127.0.0.1 only and a referral between them, aliases, nested
// groups and LDAP URL members, ldapi with SASL EXTERNAL). Where smmapd keeps a deliberate
// difference (smmapd(8) "Differences from Postfix's tables") the case says which answer
// each gives and that check-map warns.
import { spawnSync } from 'node:child_process';
import { copyFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort, runCtl, runCtlAsync } from '../helpers/base';
import {
  directoriesMissing, makeCertificates, mysqlSql, pgSql, postmapAnswer, seedLdap, seedLdapExtras, seedLdapRemote,
  seedMysql, seedPg, seedSqlite, startLdap, startMysql, startPg, stopLdap, stopMysql, stopPg, type Ldap, type My,
  type Pg,
} from '../helpers/directories';
import { describeWithPeer } from '../helpers/suite';

/** Our reply judged against postmap's: NOTFOUND ↔ `NOTFOUND `, ERROR ↔ `TEMP ...`, else the same bytes. */
function agrees(postfix: string, ours: string): boolean {
  if (postfix === 'NOTFOUND') return ours === 'NOTFOUND ';
  if (postfix === 'ERROR') return ours.startsWith('TEMP ');
  return postfix === ours;
}

/** The differential helpers over the files in `dirOf()`. */
function differential(dirOf: () => string) {
  /** Write NAME.cf and a configuration naming it; ask both; return [postfix, ours] per key. */
  async function both(name: string, type: string, cf: string, keys: readonly string[]): Promise<Array<[string, string]>> {
    const file = join(dirOf(), `${name}.cf`);
    writeFileSync(file, cf);
    const conf = join(dirOf(), `${name}.conf`);
    writeFileSync(conf, `configdirectory: ${dirOf()}\nsmmapd_maps_timeout: 8\nsmmapd_map_m: ${type}:${file}\n`);
    const r = await runCtlAsync(conf, ['query', '--map', 'm', '--', ...keys]);
    const ours = r.stdout.split('\n').slice(0, -1);
    if (ours.length !== keys.length) throw new Error(`smmapctl query (${name}) exited ${r.code}: ${r.stderr}`);
    const theirs = await Promise.all(keys.map((k) => postmapAnswer(`${type}:${file}`, k)));
    return keys.map((_, i) => [theirs[i]!, ours[i]!]);
  }

  /** The differential: every key agrees; returns our answers for the pinning assertions. */
  async function same(name: string, type: string, cf: string, keys: readonly string[]): Promise<string[]> {
    const got = await both(name, type, cf, keys);
    const differs = got.flatMap(([p, o], i) => (agrees(p, o) ? [] : [`${name} ${JSON.stringify(keys[i])}: postfix ${JSON.stringify(p)}, ours ${JSON.stringify(o)}`]));
    expect(differs).toEqual([]);
    return got.map(([, o]) => (o.startsWith('TEMP ') ? 'TEMP' : o));
  }

  /** check-map's warnings and verdict for NAME.cf (written by both()). */
  function checkMap(name: string): { code: number | null; err: string } {
    const r = runCtl(join(dirOf(), `${name}.conf`), ['check-map', 'm'], undefined, 60_000);
    return { code: r.code, err: r.stderr };
  }
  return { both, same, checkMap };
}

describeWithPeer('ldap table parameters: each answers as Postfix 3.7 answers (postmap -f -q)', directoriesMissing(), () => {
  let dir: string;
  let a: Ldap;
  let b: Ldap;

  const { both, same, checkMap } = differential(() => dir);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smmapd-params-'));
    chmodSync(dir, 0o755);
    const [ap, bp, bsp] = [await freePort(), await freePort(), await freePort()];
    // b: the referral's target, TLS with a certificate for the IP address only
    b = await startLdap(join(dir, 'b'), bp, { tls: true, ldapsPort: bsp, san: 'IP:127.0.0.1' });
    seedLdapRemote(bp);
    a = await startLdap(join(dir, 'a'), ap, { ldapi: true, plain: true });
    seedLdap(ap);
    seedLdapExtras(ap, bp);
    // a CA directory for tls_ca_cert_dir
    mkdirSync(join(dir, 'cadir'));
    copyFileSync(b.caFile, join(dir, 'cadir', 'ca.pem'));
  }, 240_000);

  afterAll(async () => {
    if (a) await stopLdap(a);
    if (b) await stopLdap(b);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const people = (host: string): string => `server_host = ${host}\nsearch_base = ou=people,dc=example,dc=com\nquery_filter = (mail=%s)\nresult_attribute = description\n`;

  it('ldap size_limit (default expansion_limit): over the limit is an error, not part of the result', async () => {
    const q = (extra: string): string => `server_host = ldap://127.0.0.1:${a.port}\nversion = 3\nsearch_base = ou=people,dc=example,dc=com\nquery_filter = (|(mail=%s)(uid=nodesc))\nresult_attribute = description\n${extra}`;
    const keys = ['fred@example.com', 'team@example.com', 'nosuch@example.com'];
    expect(await same('size1', 'ldap', q('size_limit = 1\n'), keys)).toEqual(['TEMP', 'TEMP', 'NOTFOUND ']);
    expect(await same('size3', 'ldap', q('size_limit = 3\n'), keys)).toEqual(['OK fred@mail.example.com', 'OK barney@mail.example.com,wilma@mail.example.com,wilma@backup.example.com', 'NOTFOUND ']);
    // no size_limit: expansion_limit is the size limit (two entries for fred's key, one value)
    expect(await same('sizeexp1', 'ldap', q('expansion_limit = 1\n'), keys)).toEqual(['TEMP', 'TEMP', 'NOTFOUND ']);
    expect(await same('sizeexp2', 'ldap', q('expansion_limit = 2\n'), keys.slice(0, 1))).toEqual(['OK fred@mail.example.com']);
  }, 120_000);

  it('ldap query_filter with white space where libldap skips it (continuation lines), and where it refuses the filter', async () => {
    const keys = ['fred@example.com', 'barney@x.org', 'team@example.com', 'nosuch@example.com'];
    const base = `server_host = ldap://127.0.0.1:${a.port}\nversion = 3\nsearch_base = ou=people,dc=example,dc=com\nresult_attribute = uid\n`;
    const filters = [
      '(|(mail=%s)\n    (uid=%u))', '(| (mail=%s) (uid=%u) )', '( mail=%s )', '(&\t(mail=%s)\t(uid=*)\t)', 'mail=%s', '(! (mail=%s))',
      '(&(|(mail=%s)(uid=%u))(!(uid=wilma)))', '(!(mail=%s) )', '(mail =%s)', '(mail=%s)(uid=x)',
    ];
    const got: string[][] = [];
    for (const [i, f] of filters.entries()) got.push(await same(`filter-${i}`, 'ldap', `${base}query_filter = ${f}\n`, keys));
    expect(got[0]).toEqual(['OK fred', 'OK barney', 'OK barney,wilma', 'NOTFOUND ']);
    for (const refused of got.slice(7)) expect(refused).toEqual(['TEMP', 'TEMP', 'TEMP', 'TEMP']);
  }, 120_000);

  it('ldap dereference 0-3: aliases found as libldap finds them', async () => {
    const keys = ['fred@example.com', 'barney@example.com'];
    for (const d of [0, 1, 2, 3]) {
      const sub = `server_host = ldap://127.0.0.1:${a.port}\nversion = 3\nsearch_base = ou=aliases,dc=example,dc=com\nquery_filter = (mail=%s)\nresult_attribute = description\ndereference = ${d}\n`;
      expect(await same(`deref${d}`, 'ldap', sub, keys), `dereference ${d}`).toEqual([d === 1 || d === 3 ? 'OK fred@mail.example.com' : 'NOTFOUND ', 'NOTFOUND ']);
      const base = `${sub}search_base = uid=fredalias,ou=aliases,dc=example,dc=com\nscope = base\n`;
      expect(await same(`derefbase${d}`, 'ldap', base, keys), `dereference ${d}, base`).toEqual([d >= 2 ? 'OK fred@mail.example.com' : 'NOTFOUND ', 'NOTFOUND ']);
    }
  }, 120_000);

  it('ldap chase_referrals: a continuation reference and a referral result to the second slapd are followed with yes, not with no', async () => {
    const keys = ['remo@example.com', 'fred@example.com', 'nosuch@example.com'];
    const cf = (chase: string): string => `server_host = ldap://127.0.0.1:${a.port}\nversion = 3\nsearch_base = dc=example,dc=com\nquery_filter = (mail=%s)\nresult_attribute = description\n${chase}`;
    expect(await same('refno', 'ldap', cf(''), keys)).toEqual(['NOTFOUND ', 'OK fred@mail.example.com', 'NOTFOUND ']);
    expect(await same('refyes', 'ldap', cf('chase_referrals = yes\n'), keys)).toEqual(['OK remo@far.example.com', 'OK fred@mail.example.com', 'NOTFOUND ']);
    // the search base itself under the referral: an error without chasing, as for Postfix
    const under = (chase: string): string => cf(chase).replace('search_base = dc=example', 'search_base = ou=remote,dc=example');
    expect(await same('refbaseno', 'ldap', under(''), keys)).toEqual(['TEMP', 'TEMP', 'TEMP']);
    // with chasing, the referral result is followed to the second slapd
    expect(await same('refbaseyes', 'ldap', under('chase_referrals = yes\n'), keys)).toEqual(['OK remo@far.example.com', 'NOTFOUND ', 'NOTFOUND ']);
    expect(checkMap('refbaseyes').err).not.toContain('differs from Postfix');
  }, 120_000);

  it('ldap TLS: STARTTLS and ldaps:// to 127.0.0.1 with a certificate for the IP address; tls_ca_cert_dir', async () => {
    const keys = ['remo@example.com', 'nosuch@example.com'];
    const remote = (host: string, extra: string): string => `server_host = ${host}\nversion = 3\nsearch_base = ou=remote,dc=example,dc=com\nquery_filter = (mail=%s)\nresult_attribute = description\ntls_require_cert = yes\n${extra}`;
    const want = ['OK remo@far.example.com', 'NOTFOUND '];
    expect(await same('starttls', 'ldap', remote(`127.0.0.1:${b.port}`, `start_tls = yes\ntls_ca_cert_file = ${b.caFile}\n`), keys)).toEqual(want);
    expect(await same('ldaps', 'ldap', remote(`ldaps://127.0.0.1:${b.ldapsPort}`, `tls_ca_cert_file = ${b.caFile}\n`), keys)).toEqual(want);
    expect(await same('cadir', 'ldap', remote(`ldap://127.0.0.1:${b.port}`, `start_tls = yes\ntls_ca_cert_dir = ${dir}/cadir\n`), keys)).toEqual(want);
    // no CA: the certificate is not trusted
    expect(await same('noca', 'ldap', remote(`ldaps://127.0.0.1:${b.ldapsPort}`, ''), keys)).toEqual(['TEMP', 'TEMP']);
    // the name asked for is not in the certificate (it names 127.0.0.1 only)
    expect(await same('wrongname', 'ldap', remote(`ldaps://localhost:${b.ldapsPort}`, `tls_ca_cert_file = ${b.caFile}
`), keys)).toEqual(['TEMP', 'TEMP']);
  }, 120_000);

  it('ldap tls_require_cert unset: a deliberate difference (smmapd checks), and check-map says so', async () => {
    const cf = `server_host = ldaps://127.0.0.1:${b.ldapsPort}\nversion = 3\nsearch_base = ou=remote,dc=example,dc=com\nquery_filter = (mail=%s)\nresult_attribute = description\n`;
    const [[postfix, ours]] = await both('requnset', 'ldap', cf, ['remo@example.com']);
    expect(postfix).toBe('OK remo@far.example.com');
    expect(ours).toMatch(/^TEMP /);
    expect(checkMap('requnset').err).toContain("requnset.cf: tls_require_cert: differs from Postfix: not set: smmapd checks the server's certificate");
    expect(await same('reqno', 'ldap', `${cf}tls_require_cert = no\n`, ['remo@example.com'])).toEqual(['OK remo@far.example.com']);
  }, 120_000);

  it('ldap version: 2 binds as LDAPv2, which slapd refuses, as it refuses Postfix; unset is 3', async () => {
    const keys = ['fred@example.com'];
    const host = `ldap://127.0.0.1:${a.port}`;
    expect(await same('vunset', 'ldap', people(host), keys)).toEqual(['OK fred@mail.example.com']);
    expect(await same('v2', 'ldap', `${people(host)}version = 2\n`, keys)).toEqual(['TEMP']);
    expect(await same('v2bound', 'ldap', `${people(host)}version = 2\nbind_dn = cn=admin,dc=example,dc=com\nbind_pw = secret\n`, keys)).toEqual(['TEMP']);
    expect(await same('v2nobind', 'ldap', `${people(host)}version = 2\nbind = no\n`, keys)).toEqual(['OK fred@mail.example.com']);
    expect(await same('v3', 'ldap', `${people(host)}version = 3\n`, keys)).toEqual(['OK fred@mail.example.com']);
  }, 120_000);

  it('ldap group and list expansion: special, leaf and terminal result attributes, recursion_limit, expansion_limit', async () => {
    const keys = ['all@example.com', 'staff@example.com', 'term@example.com', 'url@example.com', 'urlattr@example.com', 'loop@example.com',
      'badurl@example.com', 'fred@example.com', 'team@example.com', 'nosuch@example.com'];
    const groups = `server_host = ldap://127.0.0.1:${a.port}\nversion = 3\nsearch_base = dc=example,dc=com\nquery_filter = (mail=%s)\nresult_attribute = description\n`;
    const full = `${groups}special_result_attribute = member, labeledURI\nleaf_result_attribute = mail\nterminal_result_attribute = title\n`;
    const got = await same('groups', 'ldap', full, keys);
    // libldap's order: the entry's attributes as the server sends them, each special value expanded where it stands
    expect(got[0]).toBe("OK all-owner@example.com,barney@example.com,team@example.com,barney@mail.example.com,team@example.com,o'brien@example.com,wilma@mail.example.com,wilma@backup.example.com,fred@example.com,info@example.com,fred@mail.example.com");
    expect(got[3]).toBe("OK nodesc@example.com,fred@example.com,info@example.com,fred@mail.example.com,team@example.com,o'brien@example.com,wilma@mail.example.com,wilma@backup.example.com");
    expect(got[4]).toBe('OK nodesc@example.com,barney@example.com,team@example.com');
    expect(got[2]).toBe('OK term-owner@example.com');
    expect(got.slice(5)).toEqual(['TEMP', 'TEMP', 'OK fred@example.com,info@example.com,fred@mail.example.com', got[1], 'NOTFOUND ']);
    await same('specialonly', 'ldap', `${groups}special_result_attribute = member\n`, keys);
    await same('noleaf', 'ldap', `${groups}special_result_attribute = member, labeledURI\nterminal_result_attribute = title\n`, keys);
    await same('rec1', 'ldap', `${full}recursion_limit = 1\n`, keys);
    await same('rec2', 'ldap', `${full}recursion_limit = 2\n`, keys);
    await same('exp3', 'ldap', `${full}expansion_limit = 3\n`, keys);
    await same('exp3size0', 'ldap', `${full}expansion_limit = 3\nsize_limit = 0\n`, keys);
  }, 240_000);

  it('ldap ldapi://, bind = sasl with EXTERNAL and PLAIN (PLAIN in the clear refused as libldap refuses it)', async () => {
    const keys = ['fred@example.com', 'nosuch@example.com'];
    const want = ['OK fred@mail.example.com', 'NOTFOUND '];
    expect(await same('ldapi', 'ldap', `${people(a.ldapi)}version = 3\nbind = no\n`, keys)).toEqual(want);
    expect(await same('external', 'ldap', `${people(a.ldapi)}version = 3\nbind = sasl\nsasl_mechs = EXTERNAL\n`, keys)).toEqual(want);
    expect(await same('external-authz', 'ldap', `${people(a.ldapi)}version = 3\nbind = sasl\nsasl_mechs = EXTERNAL\nsasl_authz_id = dn:uid=fred,ou=people,dc=example,dc=com\n`, keys)).toEqual(['TEMP', 'TEMP']);
    expect(await same('plain', 'ldap', `${people(a.ldapi)}version = 3\nbind = sasl\nsasl_mechs = PLAIN\nbind_dn = fred\nbind_pw = fredpw\n`, keys)).toEqual(want);
    expect(await same('plainbad', 'ldap', `${people(a.ldapi)}version = 3\nbind = sasl\nsasl_mechs = PLAIN\nbind_dn = fred\nbind_pw = wrong\n`, keys)).toEqual(['TEMP', 'TEMP']);
    // PLAIN in the clear: Postfix's libldap refuses it (ERROR); smmapd refuses the file, naming the parameter
    const clear = `${people(`ldap://127.0.0.1:${a.port}`)}version = 3\nbind = sasl\nsasl_mechs = PLAIN\nbind_dn = fred\nbind_pw = fredpw\n`;
    await expect(both('plainclear', 'ldap', clear, keys)).rejects.toThrow(/sasl_mechs: PLAIN over ldap:\/\/ without start_tls/);
    expect(await postmapAnswer(`ldap:${dir}/plainclear.cf`, keys[0]!)).toBe('ERROR');
  }, 120_000);
});

describeWithPeer('pgsql, mysql, sqlite table parameters and domain: each answers as Postfix 3.7 answers (postmap -f -q)', directoriesMissing(), () => {
  let dir: string;
  let pg: Pg;
  let my: My;
  let sqlite: string;
  const { same, checkMap } = differential(() => dir);
  const keys = ['info@example.com', 'team@example.com', 'someone@example.net', 'nosuch@example.com'];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smmapd-sqlparams-'));
    chmodSync(dir, 0o755);
    pg = await startPg(join(dir, 'pg'), await freePort(), { tls: true });
    seedPg(pg.port);
    pgSql(pg.port, `GRANT SELECT ON aliases TO tlsonly;
      CREATE FUNCTION goto_of(text) RETURNS SETOF text LANGUAGE sql AS $$ SELECT goto FROM aliases WHERE alias = $1 AND active $$;`);
    my = await startMysql(join(dir, 'my'), await freePort(), { tls: true });
    seedMysql(my.port);
    mysqlSql(my.port, `CREATE PROCEDURE one(k varchar(400)) SELECT goto FROM aliases WHERE alias = k;
      DELIMITER //
      CREATE PROCEDURE two(k varchar(400)) BEGIN SELECT goto FROM aliases WHERE alias = k; SELECT 'x'; END//
      DELIMITER ;
      GRANT EXECUTE ON mail.* TO 'postfix'@'127.0.0.1';`);
    makeCertificates(join(dir, 'otherca'));
    // a CA directory as OpenSSL reads it (HASH.0), and one it cannot use (the file by another name)
    const hash = spawnSync('openssl', ['x509', '-hash', '-noout', '-in', join(dir, 'my', 'tls', 'ca.pem')], { encoding: 'utf8' }).stdout.trim();
    mkdirSync(join(dir, 'capath'));
    copyFileSync(join(dir, 'my', 'tls', 'ca.pem'), join(dir, 'capath', `${hash}.0`));
    mkdirSync(join(dir, 'capath-unhashed'));
    copyFileSync(join(dir, 'my', 'tls', 'ca.pem'), join(dir, 'capath-unhashed', 'ca.pem'));
    sqlite = join(dir, 'aliases.sqlite');
    seedSqlite(sqlite);
  }, 300_000);

  afterAll(async () => {
    if (pg) stopPg(pg);
    if (my) await stopMysql(my);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const pgq = "query = SELECT goto FROM aliases WHERE alias='%s' AND active\n";
  const want = ['OK fred@example.com', 'OK fred@example.com,barney@example.com,wilma@example.org', 'NOTFOUND ', 'NOTFOUND '];

  it("query and result_format templates (%s %u %d %S %U %D %1-%9 %%), the same on all three SQL tables", async () => {
    const tkeys = ['info@example.com', 'team@example.com', 'a.b.c@x.example.com', 'fred', '@example.net', 'user@', 'a@b@example.com', 'UPPER@EXAMPLE.COM', "o'brien@example.com", '%s', 'pct%50@example.com'];
    const tables: ReadonlyArray<readonly [string, string]> = [
      ['pgsql', `hosts = inet:127.0.0.1:${pg.port}\nuser = postgres\ndbname = postgres\n`],
      ['mysql', myc('')],
      ['sqlite', `dbpath = ${sqlite}\n`],
    ];
    const variants = [
      "query = SELECT goto FROM aliases WHERE alias='%u@%d'\n",
      "query = SELECT goto FROM aliases WHERE alias LIKE '%u%%'\n",
      "query = SELECT '%1|%2|%3|%4' FROM aliases WHERE alias='%s'\n",
      "query = SELECT '%d' FROM aliases WHERE alias='%s'\n",
      "query = SELECT goto, alias FROM aliases WHERE alias='%s'\n",
      ...['%u', '%d', '%S', '%U@%D', '%2.%1', '%%s', 'smtp:[%s]', '%9'].map((f) => `query = SELECT goto FROM aliases WHERE alias='%s'\nresult_format = ${f}\n`),
    ];
    for (const [type, conn] of tables) {
      for (const [i, v] of variants.entries()) await same(`tmpl-${type}-${i}`, type, conn + v, tkeys);
    }
  }, 300_000);

  it('.cf lines as readlline() reads them: a continuation keeps its white space, comments between, CR, NBSP; a first line starting with white space is ignored', async () => {
    const conn = `hosts = inet:127.0.0.1:${pg.port}\nuser = postgres\ndbname = postgres\n`;
    const keys = ['info@example.com', 'nosuch@example.com'];
    const forms = ['%s  \n  extra', '%s\n#comment\n    # indented\n\textra', '[%s]\u00a0', '<%s>\r', '<%s>\r\n  x\r', 'a%s\n \n  b', '%s\n  \v x'];
    const got: string[] = [];
    for (const [i, f] of forms.entries()) got.push((await same(`lines-${i}`, 'pgsql', `${conn}${pgq}result_format = ${f}\n`, keys))[0]!);
    expect(got.slice(0, 3)).toEqual(['OK fred@example.com    extra', 'OK fred@example.com\textra', 'OK [fred@example.com]\u00a0']);
    expect(await same('lines-lead', 'pgsql', `  result_format = lead\n  more\n${conn}${pgq}`, keys)).toEqual(['OK fred@example.com', 'NOTFOUND ']);
    expect(checkMap('lines-lead').err).toContain('lines-lead.cf:1: a line starting with white space continues no line before it: ignored, as Postfix ignores it');
  }, 120_000);

  it('pgsql: a user allowed over TLS only (libpq tries TLS first), postgresql:// URIs with sslmode', async () => {
    const host = `inet:127.0.0.1:${pg.port}`;
    expect(await same('pgtls', 'pgsql', `hosts = ${host}\nuser = tlsonly\ndbname = postgres\n${pgq}`, keys)).toEqual(want);
    const uri = (q: string): string => `hosts = postgresql://tlsonly@127.0.0.1:${pg.port}/postgres${q}\ndbname = postgres\n${pgq}`;
    expect(await same('pgrequire', 'pgsql', uri('?sslmode=require'), keys)).toEqual(want);
    expect(await same('pgdisable', 'pgsql', uri('?sslmode=disable'), keys)).toEqual(['TEMP', 'TEMP', 'TEMP', 'TEMP']);
    expect(await same('pgverify', 'pgsql', uri(`?sslmode=verify-full&sslrootcert=${pg.dir}/tls/ca.pem`), keys)).toEqual(want);
    expect(await same('pgverifyother', 'pgsql', uri(`?sslmode=verify-ca&sslrootcert=${dir}/otherca/ca.pem`), keys)).toEqual(['TEMP', 'TEMP', 'TEMP', 'TEMP']);
  }, 120_000);

  it('pgsql: select_function and the legacy table form', async () => {
    const c = `hosts = inet:127.0.0.1:${pg.port}\nuser = postgres\ndbname = postgres\n`;
    expect(await same('pgfunc', 'pgsql', `${c}select_function = goto_of\n`, keys)).toEqual(want);
    expect(await same('pglegacy', 'pgsql', `${c}table = aliases\nselect_field = goto\nwhere_field = alias\nadditional_conditions = AND active\n`, keys)).toEqual(want);
  }, 120_000);

  const myc = (extra: string): string => `hosts = inet:127.0.0.1:${my.port}\nuser = postfix\npassword = pw\ndbname = mail\n${extra}`;
  const myq = "query = SELECT goto FROM aliases WHERE alias='%s' AND active\n";

  it('mysql TLS: tls_verify_cert = no still checks the chain; tls_CApath; tls_verify_cert = yes', async () => {
    expect(await same('myca', 'mysql', myc(`${myq}tls_CAfile = ${my.dir}/tls/ca.pem\n`), keys)).toEqual(want);
    expect(await same('mycapath', 'mysql', myc(`${myq}tls_CApath = ${dir}/capath\n`), keys)).toEqual(want);
    expect(await same('mycapathunhashed', 'mysql', myc(`${myq}tls_CApath = ${dir}/capath-unhashed\n`), keys)).toEqual(['TEMP', 'TEMP', 'TEMP', 'TEMP']);
    expect(await same('myverify', 'mysql', myc(`${myq}tls_CAfile = ${my.dir}/tls/ca.pem\ntls_verify_cert = yes\n`), keys)).toEqual(want);
    const temp = ['TEMP', 'TEMP', 'TEMP', 'TEMP'];
    expect(await same('myother', 'mysql', myc(`${myq}tls_CAfile = ${dir}/otherca/ca.pem\n`), keys)).toEqual(temp);
    expect(await same('myothernoverify', 'mysql', myc(`${myq}tls_CAfile = ${dir}/otherca/ca.pem\ntls_verify_cert = no\n`), keys)).toEqual(temp);
  }, 120_000);

  it('mysql tls_ciphers as libmariadb applies it: TLS 1.3 suites named restrict TLS 1.3, a TLS 1.2 list leaves TLS 1.3 alone, no match fails', async () => {
    const ok = ['OK fred@example.com'];
    const temp = ['TEMP'];
    // the server has an RSA certificate and speaks TLS 1.2 and 1.3 (without the CCM suites)
    const cases: ReadonlyArray<readonly [string, string[]]> = [
      ['ECDHE-RSA-AES128-GCM-SHA256', ok],
      ['AES128-SHA', ok],
      ['ECDHE-ECDSA-AES128-GCM-SHA256', ok],
      ['TLS_AES_256_GCM_SHA384', ok],
      ['NOSUCHCIPHER', temp],
      ['TLS_AES_128_CCM_8_SHA256', temp],
      ['ECDHE-ECDSA-AES128-GCM-SHA256:TLS_AES_128_CCM_8_SHA256', temp],
    ];
    for (const [i, [list, want]] of cases.entries()) {
      expect(await same(`myciphers${i}`, 'mysql', myc(`${myq}tls_CAfile = ${my.dir}/tls/ca.pem\ntls_ciphers = ${list}\n`), keys.slice(0, 1)), list).toEqual(want);
    }
    expect(checkMap('myciphers0').err).not.toContain('differs from Postfix');
  }, 120_000);

  it('mysql: CALL with one result set answers, with two is an error; legacy form; a stray select_function is not used', async () => {
    expect(await same('mycall1', 'mysql', myc("query = CALL one('%s')\n"), keys.slice(0, 2))).toEqual(['OK fred@example.com', 'OK fred@example.com,barney@example.com,wilma@example.org']);
    expect(await same('mycall2', 'mysql', myc("query = CALL two('%s')\n"), keys.slice(0, 2))).toEqual(['TEMP', 'TEMP']);
    const legacy = 'table = aliases\nselect_field = goto\nwhere_field = alias\nadditional_conditions = AND active\n';
    expect(await same('mylegacy', 'mysql', myc(legacy), keys)).toEqual(want);
    expect(await same('mystray', 'mysql', myc(`${legacy}select_function = nosuchfunction\n`), keys)).toEqual(want);
  }, 120_000);

  it('mysql: localhost is the unix socket; option_file and option_group as libmariadb reads them', async () => {
    expect(await same('mylocal', 'mysql', myc(myq).replace(`inet:127.0.0.1:${my.port}`, `inet:localhost:${my.port}`), keys.slice(0, 1))).toEqual(['TEMP']);
    writeFileSync(join(dir, 'my.cnf'), `[client]\nsocket = ${my.dir}/sock\n[smmapd]\nport = ${my.port}\n`);
    const root = `hosts = localhost\nuser = root\ndbname = mail\n${myq}`;
    expect(await same('myoptfile', 'mysql', `${root}option_file = ${dir}/my.cnf\n`, keys)).toEqual(want);
    expect(await same('myoptgroup', 'mysql', `${root}option_file = ${dir}/my.cnf\noption_group = smmapd\n`, keys)).toEqual(want);
    writeFileSync(join(dir, 'my2.cnf'), `[client]\nuser = root\n[smmapd]\nsocket = ${my.dir}/sock\n`);
    await same('myoptuser', 'mysql', `hosts = localhost\ndbname = mail\n${myq}option_file = ${dir}/my2.cnf\noption_group = smmapd\n`, keys);
    await same('myoptnogroup', 'mysql', `hosts = localhost\ndbname = mail\n${myq}option_file = ${dir}/my2.cnf\n`, keys);
  }, 120_000);

  it("mysql option files: their ssl-* settings replace the .cf's tls_* (libmariadb reads them at connect), ssl-cipher alone turns TLS on, their password is never used", async () => {
    const k = keys.slice(0, 1);
    const cases: ReadonlyArray<readonly [string, string, string, string]> = [
      // name, option file, .cf additions, the answer both give
      ['optcipher', '[client]\nssl\nssl-cipher = ECDHE-RSA-AES128-GCM-SHA256\n', '', 'OK fred@example.com'],
      ['optcipherbad', '[client]\nssl\nssl-cipher = NOSUCHCIPHER\n', '', 'TEMP'],
      ['optcipheronly', '[client]\nssl-cipher = NOSUCHCIPHER\n', '', 'TEMP'],
      ['optcipher13', '[client]\nssl\nssl-cipher = TLS_AES_128_CCM_8_SHA256\n', '', 'TEMP'],
      ['optcipherover', '[client]\nssl-cipher = NOSUCHCIPHER\n', 'tls_ciphers = ECDHE-RSA-AES128-GCM-SHA256\n', 'TEMP'],
      ['optcipherover2', '[client]\nssl-cipher = ECDHE-RSA-AES128-GCM-SHA256\n', 'tls_ciphers = NOSUCHCIPHER\n', 'OK fred@example.com'],
      ['optcaover', `[client]\nssl-ca = ${my.dir}/tls/ca.pem\n`, `tls_CAfile = ${dir}/otherca/ca.pem\n`, 'OK fred@example.com'],
      ['optcaover2', `[client]\nssl-ca = ${dir}/otherca/ca.pem\n`, `tls_CAfile = ${my.dir}/tls/ca.pem\n`, 'TEMP'],
      ['optcaonly', `[client]\nssl-ca = ${dir}/otherca/ca.pem\n`, '', 'TEMP'],
      ['optpwwrong', '[client]\npassword = wrong\n', '', 'OK fred@example.com'],
    ];
    for (const [name, cnf, extra, answer] of cases) {
      writeFileSync(join(dir, `${name}.cnf`), cnf);
      expect([name, ...(await same(name, 'mysql', myc(`${myq}${extra}option_file = ${dir}/${name}.cnf\n`), k))]).toEqual([name, answer]);
    }
    // a unix: host names no host to libmariadb: the files' host, if not localhost, is used over TCP
    writeFileSync(join(dir, 'opthost.cnf'), `[client]\nhost = 127.0.0.1\nport = ${my.port}\n`);
    const viaFile = `hosts = unix:${dir}/nosuch.sock\nuser = postfix\npassword = pw\ndbname = mail\n${myq}option_file = ${dir}/opthost.cnf\n`;
    expect(await same('opthost', 'mysql', viaFile, k)).toEqual(['OK fred@example.com']);
    // no password in the .cf: Postfix passes "", so the option file's is not used
    writeFileSync(join(dir, 'optpw.cnf'), '[client]\npassword = pw\n');
    const nopw = `hosts = inet:127.0.0.1:${my.port}\nuser = postfix\ndbname = mail\n${myq}option_file = ${dir}/optpw.cnf\n`;
    expect(await same('optpw', 'mysql', nopw, k)).toEqual(['TEMP']);
  }, 180_000);

  it('deliberate differences check-map warns of: several pgsql or mysql hosts (tried in order), a UTF8 PostgreSQL database', async () => {
    // a dead host beside a live one: Postfix (either order) and smmapd answer alike
    const dead = await freePort();
    const pgc = `user = postgres\ndbname = postgres\n${pgq}`;
    expect(await same('pghosts', 'pgsql', `hosts = inet:127.0.0.1:${dead} inet:127.0.0.1:${pg.port}\n${pgc}`, keys)).toEqual(want);
    expect(checkMap('pghosts').err).toMatch(/pghosts\.cf:1: hosts: differs from Postfix: tried in the order given.*\n/);
    expect(checkMap('pghosts').err).toMatch(/pghosts\.cf:3: dbname: differs from Postfix: a UTF8 database: smmapd talks UTF8 to it, Postfix 3\.7 talks LATIN1/);
    expect(await same('myhosts', 'mysql', myc(myq).replace(`hosts = inet:127.0.0.1:${my.port}`, `hosts = inet:127.0.0.1:${dead}, inet:127.0.0.1:${my.port}`), keys)).toEqual(want);
    expect(checkMap('myhosts').err).toContain('myhosts.cf:1: hosts: differs from Postfix: tried in the order given');
    // one mysql host: no difference to warn of
    await same('myonehost', 'mysql', myc(myq), keys.slice(0, 1));
    expect(checkMap('myonehost').err).not.toContain('differs from Postfix');
  }, 120_000);

  it('sqlite: two statements run the first; the legacy table form', async () => {
    const c = `dbpath = ${sqlite}\n`;
    expect(await same('sq2', 'sqlite', `${c}query = SELECT goto FROM aliases WHERE alias='%s' AND active; SELECT 'x'\n`, keys)).toEqual(want);
    expect(await same('sqlegacy', 'sqlite', `${c}table = aliases\nselect_field = goto\nwhere_field = alias\nadditional_conditions = AND active\n`, keys)).toEqual(want);
  }, 120_000);

  it('domain: !/file negates the file, # mid-list ends it (Postfix warns), type:table patterns', async () => {
    writeFileSync(join(dir, 'domains'), '# ours\nexample.net\n  example.org\n');
    const c = `dbpath = ${sqlite}\nquery = SELECT goto FROM aliases WHERE alias='%s' AND active\n`;
    const k = [...keys, '@example.net', 'x@example.org'];
    expect(await same('dnegfile', 'sqlite', `${c}domain = !/${dir.slice(1)}/domains, example.com, example.net\n`, k)).toEqual([...want.slice(0, 2), 'NOTFOUND ', 'NOTFOUND ', 'NOTFOUND ', 'NOTFOUND ']);
    expect(await same('dfile', 'sqlite', `${c}domain = /${dir.slice(1)}/domains\n`, ['@example.net', 'info@example.com'])).toEqual(['NOTFOUND ', 'NOTFOUND ']);
    expect(await same('dhash', 'sqlite', `${c}domain = example.com # example.net\n`, k)).toEqual([...want, 'NOTFOUND ', 'NOTFOUND ']);
    // a table in the list: the domain looked up in PostgreSQL's domains (example.com, example.net)
    writeFileSync(join(dir, 'domains-pg.cf'), `hosts = inet:127.0.0.1:${pg.port}\nuser = postgres\ndbname = postgres\nquery = SELECT domain FROM domains WHERE domain='%s'\n`);
    const kt = ['info@example.com', 'x@example.org', 'list@sub.example.com'];
    expect(await same('dtable', 'sqlite', `${c}domain = pgsql:${dir}/domains-pg.cf\n`, kt)).toEqual(['OK fred@example.com', 'NOTFOUND ', 'NOTFOUND ']);
    expect(await same('dtableneg', 'sqlite', `${c}domain = !pgsql:${dir}/domains-pg.cf, sub.example.com\n`, kt)).toEqual(['NOTFOUND ', 'NOTFOUND ', 'OK a@example.com,b,@example.org']);
    expect(await same('dtableldap', 'ldap', `server_host = ldap://127.0.0.1:1\ndomain = pgsql:${dir}/domains-pg.cf\nquery_filter = (mail=%s)\n`, ['x@example.org'])).toEqual(['NOTFOUND ']);
    expect(await same('dneg', 'sqlite', `${c}domain = !example.com, example.com, example.net\n`, k)).toEqual(['NOTFOUND ', 'NOTFOUND ', 'NOTFOUND ', 'NOTFOUND ', 'NOTFOUND ', 'NOTFOUND ']);
  }, 120_000);
});
