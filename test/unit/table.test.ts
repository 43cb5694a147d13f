// The pure parts of the directory maps: Postfix's .cf syntax, db_common.c's expansion rules,
// each table's quoting, and the smmapd_map_NAME option. The tables against real servers and
// postmap: test/integration/directory-maps.test.ts.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFromText, ConfigError } from '../../src/config';
import { CfError, parseCf, readCf, reportOpenSecrets } from '../../src/table/cf';
import { checkDomain, expand, newCtx, parseTemplate, Results, templates } from '../../src/table/expand';
import { dnQuote, filterQuote } from '../../src/table/ldap';
import { mariadbCiphers, mysqlQuote, myHost } from '../../src/table/mysql';
import { pgHost, pgQuote } from '../../src/table/pgsql';
import { firstStatement } from '../../src/table/sqlite';
import { sqliteQuote } from '../../src/table/sqlite';

const q = (format: string, key: string): string | null => {
  const ctx = newCtx();
  parseTemplate(ctx, format, true, 'test');
  const out: string[] = [];
  return expand(ctx, format, key, null, out, null) ? out.join('') : null;
};

describe('Postfix .cf files', () => {
  it('reads name = value lines, continuation lines, comments; the last of a name wins', () => {
    const cf = parseCf('# comment\nhosts = a,\n  b\n\n   # indented comment\nquery = SELECT 1\nquery=SELECT 2\n', '/x.cf');
    expect(cf.str('hosts', '')).toBe('a,  b');
    expect(cf.str('query', '')).toBe('SELECT 2');
    expect(cf.where('query')).toBe('/x.cf:7');
  });
  it('joins and trims lines as readlline() and split_nameval() do', () => {
    const cf = parseCf(
      'a = x  \n  y\nb = x\n# comment\n    # indented comment\n\ty\r\nc = [x]\u00a0\nd\t=\t<x>\t\r\ne = p\n \n  q\n',
      '/x.cf',
    );
    expect(cf.str('a', '')).toBe('x    y'); // the white space of both lines stays, the newline goes
    expect(cf.str('b', '')).toBe('x\ty'); // comments between skipped, the CR at the end trimmed
    expect(cf.str('c', '')).toBe('[x]\u00a0'); // not C white space
    expect(cf.str('d', '')).toBe('<x>');
    expect(cf.str('e', '')).toBe('p  q');
    expect(cf.ignoredLine).toBe(0);
    const lead = parseCf('  a = lead\n  more\nb = 1\n', '/x.cf');
    expect(lead.has('a')).toBe(false);
    expect(lead.ignoredLine).toBe(1);
    expect(() => parseCf('two words = x\n', '/x.cf')).toThrow(new CfError('/x.cf:1: expected format: name = value'));
    expect(() => parseCf('= x\n', '/x.cf')).toThrow(new CfError('/x.cf:1: expected format: name = value'));
  });
  it('names the file and line of what is wrong', () => {
    expect(() => parseCf('hosts = a\nno equals here\n', '/x.cf')).toThrow(new CfError('/x.cf:2: expected format: name = value'));
    const cf = parseCf('expansion_limit = lots\nbind = maybe\n', '/x.cf');
    expect(() => cf.int('expansion_limit', 0)).toThrow('/x.cf:1: expansion_limit: want a whole number from 0, not "lots"');
    expect(() => cf.bool('bind', true)).toThrow('/x.cf:2: bind: want yes or no, not "maybe"');
    expect(() => cf.required('dbname')).toThrow('/x.cf: dbname is not set');
    const files = parseCf('user = u\ntls_CAfile = /nonexistent/ca.pem\n', '/y.cf');
    expect(() => files.readFor('tls_CAfile', '/nonexistent/ca.pem', (f) => readFileSync(f))).toThrow('/y.cf:2: tls_CAfile: cannot read /nonexistent/ca.pem: ENOENT');
  });
});

describe("db_common.c's expansion", () => {
  it('%s %u %d %% and domain labels %1 %2', () => {
    expect(q("a='%s' u='%u' d='%d' %%", 'fred@example.com')).toBe("a='fred@example.com' u='fred' d='example.com' %");
    expect(q('%1 %2 %3', 'x@a.b.c')).toBe('c b a');
    expect(q('%U/%D/%S', 'x@a.b')).toBe('x/a.b/x@a.b');
  });
  it('a key that cannot fill the template is not looked up', () => {
    expect(q("'%d'", 'fred')).toBeNull(); // no domain
    expect(q("'%d'", 'fred@')).toBeNull(); // empty domain
    expect(q("'%u'", '@example.com')).toBeNull(); // empty local part
    expect(q("'%u'", 'fred')).toBe("'fred'"); // %u of a domain-less key is the key
    expect(q('%3', 'x@a.b')).toBeNull(); // too few labels
    expect(q('%2', 'x@a..b')).toBe('a'); // empty labels dropped, as argv_split does
    expect(q("'%s'", '')).toBeNull();
    expect(q('%d', 'a@b@c.d')).toBe('c.d'); // the last @
  });
  it('refuses an unknown %x with where it was', () => {
    expect(() => parseTemplate(newCtx(), 'SELECT %x', true, '/x.cf:3')).toThrow('/x.cf:3: invalid query template: SELECT %x');
  });
  it('the domain list: only keys in listed domains, case-insensitive, ! excludes', () => {
    const t = templates(parseCf('domain = example.com, !bad.example.com, Example.NET\n', '/x.cf'), 'query', "'%s'", '%s');
    expect(['a@example.com', 'a@EXAMPLE.NET', 'a@bad.example.com', 'a@other.org', 'a', '@example.com'].map((k) => checkDomain(t.ctx, k))).toEqual([
      true, true, false, false, false, false,
    ]);
  });
  it('results: joined with commas, empty and NULL values skipped, result_format, expansion_limit', () => {
    const t = templates(parseCf('expansion_limit = 2\n', '/x.cf'), 'query', "'%s'", '%u at %d (%S)');
    const r = new Results(t, 'key@k.example');
    r.add('a@one.example');
    r.add('');
    r.add(null);
    r.add('nodomain'); // %d in result_format: a value without a domain adds nothing
    r.add('b@two.example');
    expect(r.value()).toBe('a at one.example (key@k.example),b at two.example (key@k.example)');
    expect(() => r.add('c@three.example')).toThrow('expansion limit (2) exceeded');
    expect(new Results(t, 'k').value()).toBeNull();
  });
});

describe('quoting as each Postfix table quotes', () => {
  it('pgsql: PQescapeStringConn (quotes doubled; backslashes too without standard_conforming_strings)', () => {
    expect(pgQuote("o'b\\r", true)).toBe("o''b\\r");
    expect(pgQuote("o'b\\r", false)).toBe("o''b\\\\r");
  });
  it('mysql: mysql_real_escape_string', () => {
    expect(mysqlQuote('a\'b"c\\d\0e\nf\rg\x1ah')).toBe('a\\\'b\\"c\\\\d\\0e\\nf\\rg\\Zh');
    expect(mysqlQuote('jürgen')).toBe('jürgen');
  });
  it('sqlite: %q', () => expect(sqliteQuote("o'brien''")).toBe("o''brien''''"));
  it('ldap: rfc2254 in filters (and NUL), rfc2253 in the base', () => {
    expect(filterQuote('*)(uid=*\\\0ü')).toBe('\\2A\\29\\28uid=\\2A\\5C\\00ü');
    expect(dnQuote('a b,c+d"e#f;<g>\\')).toBe('a\\20b\\2Cc\\2Bd\\22e\\23f\\3B\\3Cg\\3E\\5C');
  });
  it('pgsql hosts as host_init() reads them', () => {
    expect(pgHost('inet:db1:5433', {}).cc).toEqual({ host: 'db1', port: 5433 });
    expect(pgHost('db2', {}).cc).toEqual({ host: 'db2' });
    expect(pgHost('unix:/run/postgresql', {}).cc).toEqual({ host: '/run/postgresql' });
    expect(pgHost('postgresql://u@h/db', {}).cc).toEqual({ connectionString: 'postgresql://u@h/db' });
  });
  it('pgsql TLS as libpq tries it: prefer for TCP hosts, none over unix sockets, sslmode= of a URI', () => {
    const open = { rejectUnauthorized: false };
    expect(pgHost('inet:db1:5433', {}).attempts).toEqual([open, false]);
    expect(pgHost('unix:/run/postgresql', {}).attempts).toEqual([false]);
    expect(pgHost('postgresql://u@h/db?sslmode=require', {})).toEqual({ cc: { connectionString: 'postgresql://u@h/db' }, attempts: [open] });
    expect(pgHost('postgresql://u@h/db?sslmode=disable', {}).attempts).toEqual([false]);
    expect(pgHost('postgresql://u@h/db?sslmode=allow', {}).attempts).toEqual([false, open]);
    expect(() => pgHost('postgresql://u@h/db?sslmode=sometimes', {})).toThrow(/sslmode: want one of/);
  });
  it('mysql hosts: localhost is the default unix socket, the MySQL way', () => {
    expect(myHost('inet:localhost:3307')).toEqual({ socketPath: '/run/mysqld/mysqld.sock' });
    expect(myHost('LOCALHOST', '/tmp/s')).toEqual({ socketPath: '/tmp/s' });
    expect(myHost('inet:127.0.0.1:3307')).toEqual({ host: '127.0.0.1', port: 3307 });
    expect(myHost('db1', undefined, 3310)).toEqual({ host: 'db1', port: 3310 });
    // the option files' host: taken for a unix: host only (Postfix names no host for it), localhost keeps the socket
    expect(myHost('unix:/tmp/s', undefined, 3310, 'db2')).toEqual({ host: 'db2', port: 3310 });
    expect(myHost('unix:/tmp/s', undefined, 3310, 'localhost')).toEqual({ socketPath: '/tmp/s' });
    expect(myHost('inet:db1:3307', undefined, 3310, 'db2')).toEqual({ host: 'db1', port: 3307 });
  });
  it("mysql tls_ciphers: TLS 1.3 suites or TLS 1.2 ciphers, the other kind at Node's default", () => {
    const split = (c: string): [string[], string[]] => [c.split(':').filter((n) => n.startsWith('TLS_')), c.split(':').filter((n) => !n.startsWith('TLS_'))];
    const [suites, list] = split(mariadbCiphers('AES128-SHA:TLS_NOSUCH'));
    expect(suites).toEqual(['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256']);
    expect(list).toEqual(['AES128-SHA']);
    // a TLS 1.3 suite named: libmariadb never sets the TLS 1.2 list (AES128-SHA is not applied)
    const [suites2, list2] = split(mariadbCiphers('AES128-SHA:TLS_AES_128_CCM_8_SHA256'));
    expect(suites2).toEqual(['TLS_AES_128_CCM_8_SHA256']);
    expect(list2).not.toContain('AES128-SHA');
    expect(list2).toContain('HIGH');
  });
  it('sqlite: the first statement of a query, as sqlite3_prepare_v2() compiles it', () => {
    expect(firstStatement("SELECT 1; SELECT 2")).toBe('SELECT 1;');
    expect(firstStatement("SELECT 'a;b' FROM t WHERE x='o''b;'; DROP TABLE t")).toBe("SELECT 'a;b' FROM t WHERE x='o''b;';");
    expect(firstStatement('SELECT "a;" -- c;\n, [x;y] /* ; */ ; 2')).toBe('SELECT "a;" -- c;\n, [x;y] /* ; */ ;');
    expect(firstStatement('SELECT 1')).toBe('SELECT 1');
  });
});

describe('smmapd_map_NAME', () => {
  it('smmapd_verify_maps: names separated by blanks or commas, lower case; unset or empty is null', () => {
    expect(configFromText('smmapd_verify_maps: smmapd, Cyrus  other\n', '/etc/smmapd.conf').verifyMaps).toEqual(['smmapd', 'cyrus', 'other']);
    expect(configFromText('', '/etc/smmapd.conf').verifyMaps).toBeNull();
    expect(configFromText('smmapd_verify_maps:\n', '/etc/smmapd.conf').verifyMaps).toBeNull();
  });
  it('parses into name, type, file and where; names are lowercase', () => {
    const cfg = configFromText('smmapd_map_Aliases: pgsql:/etc/a.cf\nsmmapd_maps_timeout: 2\nsmmapd_map_alias0: ldap:/etc/b.cf\n', '/etc/smmapd.conf');
    expect(cfg.maps).toEqual([
      { name: 'aliases', type: 'pgsql', file: '/etc/a.cf', where: '/etc/smmapd.conf:1' },
      { name: 'alias0', type: 'ldap', file: '/etc/b.cf', where: '/etc/smmapd.conf:3' },
    ]);
    expect(cfg.mapTimeoutMs).toBe(2000);
  });
  it('a bad TYPE is a configuration error with file and line', () => {
    expect(() => configFromText('\nsmmapd_map_x: hash:/etc/x\n', '/etc/smmapd.conf')).toThrow(ConfigError);
    expect(() => configFromText('\nsmmapd_map_x: hash:/etc/x\n', '/etc/smmapd.conf')).toThrow(
      '/etc/smmapd.conf:2: smmapd_map_x: want TYPE:FILE with TYPE one of pgsql, mysql, sqlite, ldap, not "hash:/etc/x"',
    );
    expect(() => configFromText('smmapd_map_x: /etc/x.cf\n', '/c')).toThrow('/c:1: smmapd_map_x');
  });
});

describe('a password others can read (issue 13: warned as ssh warns for a key)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smmapd-cf-'));
  const file = (name: string, text: string, mode: number): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    chmodSync(p, mode);
    return p;
  };
  const warnings = (path: string): string[] => {
    const out: string[] = [];
    reportOpenSecrets(readCf(path), (m) => out.push(m));
    return out;
  };
  it('password = or bind_pw = in a .cf that group or others can read', () => {
    const open = file('open.cf', 'hosts = h\npassword = s3cret\n', 0o644);
    expect(warnings(open)).toEqual([`${open}:2: password is set in a file group or others can read (mode 0644): chmod 600 ${open} (readable by the user smmapd runs as), or use password_file`]);
    expect(warnings(file('group.cf', 'bind_pw = s3cret\n', 0o640))[0]).toMatch(/bind_pw is set in a file group or others can read \(mode 0640\)/);
    expect(warnings(file('closed.cf', 'password = s3cret\n', 0o600))).toEqual([]);
    expect(warnings(file('nopw.cf', 'hosts = h\npassword =\n', 0o644))).toEqual([]); // no password to give away
  });
  it('a password_file or bind_pw_file that group or others can read', () => {
    const pw = file('pw', 's3cret\n', 0o644);
    const cf = file('pwfile.cf', `password_file = ${pw}\n`, 0o644);
    expect(warnings(cf)).toEqual([`${cf}:1: password_file ${pw} can be read by group or others (mode 0644): chmod 600 ${pw} (readable by the user smmapd runs as)`]);
    chmodSync(pw, 0o600);
    expect(warnings(cf)).toEqual([]);
    const bpw = file('bpw', 's3cret\n', 0o604);
    expect(warnings(file('ldap.cf', `bind_pw_file = ${bpw}\n`, 0o644))[0]).toMatch(/bind_pw_file .* \(mode 0604\)/);
    rmSync(dir, { recursive: true, force: true });
  });
});
