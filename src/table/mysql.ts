// mysql:FILE, Postfix's mysql_table(5) with `mysql2`. The key is escaped exactly as
// mysql_real_escape_string() escapes it for Postfix, and the query goes out as text (no
// prepared statement), so the server sees the very text postmap sends.
import { createConnection, type ConnectionOptions } from 'mysql2';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CIPHERS } from 'node:tls';
import type { OpenNested, TableSettings } from './driver';
import type { LookupTable, StoreLog } from '../core/contract';
import { openCfTable, secret, type CfFile } from './cf';
import { templates, type Quote, type Templates } from './expand';
import { connectTimeout, HostList, HostTable, type ConnPool } from './hosts';
import { lanePool, type Lane } from './lanes';
import { MyWire } from './mysql-conn';
import { DEFAULT_OPTION_FILES, optionGroups, readOptionFiles } from './mycnf';
import { describeQuery, legacyQuery, sqlHosts, sqlLookup, type Rows, type SqlConnection } from './sql';

const ESCAPES: Record<string, string> = { '\0': '\\0', '\n': '\\n', '\r': '\\r', '\\': '\\\\', "'": "\\'", '"': '\\"', '\x1a': '\\Z' };

/** mysql_real_escape_string() (without NO_BACKSLASH_ESCAPES; UTF-8 multibyte characters pass unchanged). */
export function mysqlQuote(s: string): string {
  return s.replace(/[\0\n\r\\'"\x1a]/g, (c) => ESCAPES[c]!);
}

/**
 * A hosts entry as Postfix's host_init() reads it: unix:/path, inet:host:port, host[:port];
 * the name localhost means the default unix socket, the MySQL way (the port is not used).
 * For unix:/path Postfix passes no host name, so libmariadb takes the option files' `host`
 * (`fileHost`), and any name but localhost there means TCP to it.
 */
export function myHost(h: string, socket = DEFAULT_SOCKET, port = 3306, fileHost = ''): { host?: string; port?: number; socketPath?: string } {
  if (h.startsWith('unix:')) return fileHost === '' || fileHost.toLowerCase() === 'localhost' ? { socketPath: h.slice(5) } : { host: fileHost, port };
  const d = h.startsWith('inet:') ? h.slice(5) : h;
  const colon = d.lastIndexOf(':');
  const name = colon < 0 ? d : d.slice(0, colon);
  if (name.toLowerCase() === 'localhost') return { socketPath: socket };
  return { host: name, port: (colon < 0 ? 0 : Number(d.slice(colon + 1))) || port };
}

/** libmariadb's default socket on Debian (the option files usually say so too). */
const DEFAULT_SOCKET = '/run/mysqld/mysqld.sock';

/** The TLS 1.3 suites OpenSSL knows (SSL_CTX_set_ciphersuites() skips any other name). */
const TLS13_SUITES = new Set(['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_CCM_SHA256', 'TLS_AES_128_CCM_8_SHA256']);

/**
 * tls_ciphers as Debian's libmariadb (OpenSSL) applies it, in Node's one `ciphers` string:
 * a list naming TLS 1.3 suites sets those suites and leaves the TLS 1.2 ciphers at their
 * default; any other list is the TLS 1.2 cipher list and TLS 1.3 keeps its default suites.
 * A list that matches nothing fails the connection, for Postfix too.
 */
export function mariadbCiphers(list: string): string {
  const names = list.split(':').filter((n) => n !== '');
  const defaults = DEFAULT_CIPHERS.split(':');
  const suites = names.filter((n) => TLS13_SUITES.has(n));
  if (suites.length > 0) return [...suites, ...defaults.filter((n) => !n.startsWith('TLS_'))].join(':');
  // Node reads every TLS_ name as a TLS 1.3 suite: an unknown one (ignored by OpenSSL's list) is left out
  return [...defaults.filter((n) => n.startsWith('TLS_')), ...names.filter((n) => !n.startsWith('TLS_'))].join(':');
}

/**
 * The TLS options as Postfix's libmariadb ends up with them: the .cf file's (mysql_ssl_set,
 * MYSQL_OPT_SSL_VERIFY_SERVER_CERT), each replaced by the option files' when they name it
 * (libmariadb reads them at connect, after those calls); none without TLS.
 */
function tlsOptions(cf: CfFile, opt: ReadonlyMap<string, string>): Pick<ConnectionOptions, 'ssl'> {
  // the .cf's value is read even when the files replace it: set, it is not an unused parameter
  const setting = (param: string, key: string): { value: string; param: string } => {
    const value = cf.str(param, '');
    return opt.has(key) ? { value: opt.get(key)!, param: `${param} (${key} in the option files)` } : { value, param };
  };
  const read = (s: { param: string }, f: string): Buffer => cf.readFor(s.param, f, (p) => readFileSync(p));
  const ca = setting('tls_CAfile', 'ssl-ca');
  const caPath = setting('tls_CApath', 'ssl-capath');
  const cert = setting('tls_cert_file', 'ssl-cert');
  const key = setting('tls_key_file', 'ssl-key');
  const ciphers = setting('tls_ciphers', 'ssl-cipher').value;
  const cas: Buffer[] = [];
  if (ca.value !== '') cas.push(read(ca, ca.value));
  if (caPath.value !== '') {
    const names = cf.readFor(caPath.param, caPath.value, (d) => readdirSync(d)).sort();
    // OpenSSL (Debian's libmariadb) looks certificates up there by subject hash: only HASH.N files count
    for (const n of names) if (/^[0-9a-f]{8}\.\d+$/.test(n) && statSync(join(caPath.value, n), { throwIfNoEntry: false })?.isFile()) cas.push(read(caPath, join(caPath.value, n)));
  }
  // an option file's switch: unset, or on unless 0/off/false
  const flag = (k: string): boolean | undefined => (opt.has(k) ? !/^(0|off|false)$/i.test(opt.get(k)!) : undefined);
  // unset: libmariadb 3.3's default, no name check; the chain is checked whenever a CA is given
  const cfVerify = cf.bool('tls_verify_cert', false);
  const verify = flag('ssl-verify-server-cert') ?? cfVerify;
  const useTls = ca.value !== '' || caPath.value !== '' || cert.value !== '' || key.value !== '' || ciphers !== '' || flag('ssl') === true;
  if (!useTls) return {};
  return {
    ssl: {
      ca: cas.length > 0 ? cas : undefined,
      cert: cert.value === '' ? undefined : read(cert, cert.value),
      key: key.value === '' ? undefined : read(key, key.value),
      rejectUnauthorized: ca.value !== '' || caPath.value !== '' || verify,
      verifyIdentity: verify,
      ciphers: ciphers === '' ? undefined : mariadbCiphers(ciphers),
    },
  };
}

export class MysqlTable extends HostTable<ConnPool<Lane<MyWire>>> implements LookupTable, SqlConnection<Lane<MyWire>> {
  protected readonly t: Templates;
  protected readonly hosts: HostList<ConnPool<Lane<MyWire>>>;
  private readonly requireResultSet: boolean;
  private readonly timeoutMs: number;

  constructor(cf: CfFile, cfg: TableSettings, log: StoreLog, open: OpenNested) {
    super();
    const query = cf.has('query') ? cf.str('query', '', 1) : legacyQuery(cf, false);
    this.t = templates(cf, 'query', query, cf.str('result_format', '%s', 1), 'result_format', log, open);
    this.requireResultSet = cf.bool('require_result_set', true);
    this.timeoutMs = cfg.mapTimeoutMs;
    // the option files Postfix has libmariadb read: option_file, else the default ones, for option_group
    const optionFile = cf.str('option_file', '');
    const optionGroup = cf.str('option_group', 'client');
    const opt = optionFile === '' && optionGroup === '' ? new Map<string, string>() : readOptionFiles(optionFile !== '' ? [optionFile] : DEFAULT_OPTION_FILES, optionGroups(optionGroup));
    const base: ConnectionOptions = {
      user: cf.str('user', '') || opt.get('user') || '',
      // Postfix passes its password, "" when unset, so libmariadb never takes the option files' one
      password: secret(cf, 'password', 'password_file'),
      database: cf.required('dbname'),
      charset: 'utf8mb4',
      rowsAsArray: true,
      multipleStatements: false,
      // every value as the text the server sent, as mysql_fetch_row() gives it to Postfix
      typeCast: (field) => field.string(),
      ...tlsOptions(cf, opt),
    };
    const names = sqlHosts(cf, log);
    const optPort = Number(opt.get('port') ?? '') || 3306;
    const pools = names.map((h) => {
      const opts = { ...base, ...myHost(h, opt.get('socket') || DEFAULT_SOCKET, optPort, opt.get('host')), connectTimeout: connectTimeout(cfg, names.length) };
      return lanePool(cfg.mapPoolSize, () => myConnect(opts, this.requireResultSet));
    });
    this.hosts = new HostList('mysql', pools, names, log);
  }

  describe(key: string): string | null {
    return describeQuery(this.t, key, mysqlQuote);
  }

  lookup(key: string, until = Date.now() + this.timeoutMs): Promise<string | null> {
    return sqlLookup(this.t, key, this.hosts, this, until);
  }

  quote(): Quote {
    return mysqlQuote;
  }

  query(l: Lane<MyWire>, sql: string): Promise<Rows> {
    return l.wire.query(sql);
  }
}

/** One connection, opened by mysql2 (TLS, auth, the options above); its queries then go through MyWire. */
function myConnect(opts: ConnectionOptions, requireResultSet: boolean): Promise<MyWire> {
  return new Promise<MyWire>((resolve, reject) => {
    const conn = createConnection(opts);
    // after the connect, a server gone away errors the idle connection: MyWire marks itself dead, never crash
    conn.on('error', reject);
    conn.once('connect', () => resolve(new MyWire(conn, requireResultSet)));
  });
}

export function openTable(file: string, cfg: TableSettings, log: StoreLog, open: OpenNested): LookupTable {
  return openCfTable(file, 'mysql', log, (cf) => new MysqlTable(cf, cfg, log, open));
}
