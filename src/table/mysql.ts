// mysql:FILE, Postfix's mysql_table(5) with `mysql2`. The key is escaped exactly as
// mysql_real_escape_string() escapes it for Postfix, and the query goes out as text (no
// prepared statement), so the server sees the very text postmap sends.
import { createConnection, type Connection, type ConnectionOptions } from 'mysql2';
import { readFileSync } from 'node:fs';
import type { Config } from '../config';
import type { LookupTable } from '../core/contract';
import { openCfTable, secret, splitList, type CfFile } from './cf';
import { templates, type Templates } from './expand';
import { connectTimeout, ConnPool, HostList, QueryError } from './hosts';
import { describeQuery, legacyQuery, sqlLookup, type Rows } from './sql';

interface MyConn {
  conn: Connection;
  dead: boolean;
}

const ESCAPES: Record<string, string> = { '\0': '\\0', '\n': '\\n', '\r': '\\r', '\\': '\\\\', "'": "\\'", '"': '\\"', '\x1a': '\\Z' };

/** mysql_real_escape_string() (without NO_BACKSLASH_ESCAPES; UTF-8 multibyte characters pass unchanged). */
export function mysqlQuote(s: string): string {
  return s.replace(/[\0\n\r\\'"\x1a]/g, (c) => ESCAPES[c]!);
}

/** A hosts entry as Postfix's host_init() reads it: unix:/path, inet:host:port, host[:port]. */
export function myHost(h: string): { host?: string; port?: number; socketPath?: string } {
  if (h.startsWith('unix:')) return { socketPath: h.slice(5) };
  const d = h.startsWith('inet:') ? h.slice(5) : h;
  const colon = d.lastIndexOf(':');
  if (colon < 0) return { host: d, port: 3306 };
  return { host: d.slice(0, colon), port: Number(d.slice(colon + 1)) || 3306 };
}

export class MysqlTable implements LookupTable {
  private readonly t: Templates;
  private readonly hosts: HostList<ConnPool<MyConn>>;
  private readonly requireResultSet: boolean;
  private readonly timeoutMs: number;

  constructor(cf: CfFile, cfg: Config, log: (m: string) => void) {
    const query = cf.has('query') ? cf.str('query', '', 1) : legacyQuery(cf);
    this.t = templates(cf, 'query', query, cf.str('result_format', '%s', 1));
    this.requireResultSet = cf.bool('require_result_set', true);
    this.timeoutMs = cfg.mapTimeoutMs;
    const ca = cf.str('tls_CAfile', '');
    const cert = cf.str('tls_cert_file', '');
    const key = cf.str('tls_key_file', '');
    const read = (param: string, f: string): Buffer | undefined => {
      if (f === '') return undefined;
      try {
        return readFileSync(f);
      } catch (e) {
        return cf.fail(param, `cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
    };
    const useTls = ca !== '' || cert !== '' || key !== '';
    const base: ConnectionOptions = {
      user: cf.str('user', ''),
      password: secret(cf, 'password', 'password_file'),
      database: cf.required('dbname'),
      charset: 'utf8mb4',
      rowsAsArray: true,
      multipleStatements: false,
      // every value as the text the server sent, as mysql_fetch_row() gives it to Postfix
      typeCast: (field) => field.string(),
      ...(useTls ? { ssl: { ca: read('tls_CAfile', ca), cert: read('tls_cert_file', cert), key: read('tls_key_file', key), rejectUnauthorized: cf.bool('tls_verify_cert', true) } } : {}),
    };
    const names = splitList(cf.str('hosts', ''));
    if (names.length === 0) names.push('localhost');
    const pools = names.map((h) => {
      const opts = { ...base, ...myHost(h), connectTimeout: connectTimeout(cfg, names.length) };
      return new ConnPool<MyConn>(
        cfg.mapPoolSize,
        () =>
          new Promise<MyConn>((resolve, reject) => {
            const conn = createConnection(opts);
            const c: MyConn = { conn, dead: false };
            conn.once('connect', () => resolve(c));
            conn.on('error', (e) => {
              c.dead = true;
              reject(e);
            });
            conn.on('end', () => (c.dead = true));
          }),
        (c) => c.conn.destroy(),
        (c) => !c.dead,
      );
    });
    this.hosts = new HostList('mysql', pools, names, log);
  }

  describe(key: string): string | null {
    return describeQuery(this.t, key, mysqlQuote);
  }

  lookup(key: string, until = Date.now() + this.timeoutMs): Promise<string | null> {
    return sqlLookup(this.t, key, (build) =>
      this.hosts.run((pool, _i, hostUntil) =>
        pool.use(
          (c) =>
            new Promise<Rows>((resolve, reject) => {
              c.conn.query({ sql: build(mysqlQuote), rowsAsArray: true }, (err, result, fields) => {
                if (err) {
                  // an SQL error (it has an errno and the connection lives on): the query is wrong, not the host
                  const fatal = (err as { fatal?: boolean }).fatal === true;
                  return reject(fatal ? err : new QueryError(err.message));
                }
                // a CALL returns its result sets then an OK packet: the first set, as Postfix keeps it
                const multi = Array.isArray(fields) && fields.length > 0 && Array.isArray(fields[0]);
                const rows: unknown = multi ? (result as unknown[])[0] : result;
                if (!Array.isArray(rows)) {
                  if (this.requireResultSet) return reject(new QueryError('query returned no result set (require_result_set = yes)'));
                  return resolve([]);
                }
                resolve((rows as unknown[][]).map((r) => r.map((v) => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? v.toString('utf8') : String(v)))));
              });
            }),
          hostUntil,
        ),
      until,
      ),
    );
  }

  hostStates(): ReadonlyArray<{ readonly name: string; readonly failures: number }> {
    return this.hosts.states;
  }

  close(): void {
    for (const p of this.hosts.hosts) p.close();
  }
}

export function openTable(file: string, cfg: Config, log: (m: string) => void): LookupTable {
  return openCfTable(file, 'mysql', log, (cf) => new MysqlTable(cf, cfg, log));
}
