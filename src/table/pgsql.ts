// pgsql:FILE, Postfix's pgsql_table(5) with the `pg` client. The key is escaped as libpq's
// PQescapeStringConn escapes it for Postfix (quotes doubled; backslashes too when the
// server has standard_conforming_strings off) and the query goes out as one simple-protocol
// statement, so the server sees the very text postmap sends.
import { Client, type ClientConfig } from 'pg';
import type { OpenNested, TableSettings } from './driver';
import type { LookupTable, StoreLog } from '../core/contract';
import { readFileSync } from 'node:fs';
import { CfError, differs, openCfTable, secret, type CfFile } from './cf';
import { templates, type Quote, type Templates } from './expand';
import { connectTimeout, HostList, HostTable, type ConnPool } from './hosts';
import { lanePool, type Lane } from './lanes';
import { PgWire } from './pgsql-conn';
import { describeQuery, legacyQuery, sqlHosts, sqlLookup, type Rows, type SqlConnection } from './sql';

/** libpq's sslmode: how TLS is tried for a TCP host. */
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
const SSL_MODES: readonly string[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** A host to connect to: the client settings and the TLS attempts in libpq's order (false: plain). */
export interface PgTarget {
  readonly cc: ClientConfig;
  readonly attempts: ReadonlyArray<ClientConfig['ssl']>;
}

/** The TLS attempts libpq makes for `mode` (`rootCert`: sslrootcert's contents, for the verify modes). */
export function sslAttempts(mode: SslMode, rootCert: Buffer | undefined): Array<ClientConfig['ssl']> {
  const open = { rejectUnauthorized: false };
  switch (mode) {
    case 'disable':
      return [false];
    case 'allow':
      return [false, open];
    case 'prefer':
      return [open, false];
    case 'require':
      return [open];
    case 'verify-ca':
      return [{ ca: rootCert, rejectUnauthorized: true, checkServerIdentity: () => undefined }];
    case 'verify-full':
      return [{ ca: rootCert, rejectUnauthorized: true }];
  }
}

/**
 * A hosts entry as Postfix's host_init() reads it: postgresql:// URI (its sslmode and
 * sslrootcert read as libpq reads them), unix:/dir, inet:host:port, host[:port]. A TCP host
 * without a URI gets libpq's default, sslmode=prefer: TLS first, plain if that fails.
 */
export function pgHost(h: string, base: ClientConfig): PgTarget {
  if (h.startsWith('postgresql:') || h.startsWith('postgres:')) {
    let mode: SslMode = 'prefer';
    let rootCert: Buffer | undefined;
    let uri = h;
    try {
      const u = new URL(h);
      const m = u.searchParams.get('sslmode');
      if (m !== null) {
        if (!SSL_MODES.includes(m)) throw new CfError(`${h}: sslmode: want one of ${SSL_MODES.join(', ')}, not "${m}"`);
        mode = m as SslMode;
      }
      const rc = u.searchParams.get('sslrootcert');
      if (rc !== null && mode.startsWith('verify')) rootCert = readFileSync(rc);
      // pg-connection-string reads these its own way (require as verify-full): libpq's are applied here
      for (const p of ['sslmode', 'sslrootcert', 'sslcert', 'sslkey']) u.searchParams.delete(p);
      uri = u.toString();
      const unix = u.hostname === '' || decodeURIComponent(u.hostname).startsWith('/') || (u.searchParams.get('host') ?? '').startsWith('/');
      if (unix) mode = 'disable';
    } catch (e) {
      if (e instanceof CfError) throw e;
      throw new CfError(`${h}: ${(e as Error).message}`);
    }
    return { cc: { ...base, connectionString: uri }, attempts: sslAttempts(mode, rootCert) };
  }
  const d = h.startsWith('unix:') || h.startsWith('inet:') ? h.slice(5) : h;
  if (d === '' || d.startsWith('/')) return { cc: { ...base, host: d || '/var/run/postgresql' }, attempts: [false] };
  const colon = d.lastIndexOf(':');
  const cc = colon < 0 ? { ...base, host: d } : { ...base, host: d.slice(0, colon), port: Number(d.slice(colon + 1)) || 5432 };
  return { cc, attempts: sslAttempts('prefer', undefined) };
}

/** An attempt that failed the way libpq moves on to the next one (TLS refused, or the server said no), not a dead host. */
function tryNext(e: unknown): boolean {
  const err = e as { severity?: unknown; message?: unknown };
  return typeof err.severity === 'string' || /does not support SSL/i.test(String(err.message));
}

/** PQescapeStringConn() for a UTF-8 string (keys are checked to be valid UTF-8 before). */
export function pgQuote(s: string, std: boolean): string {
  return std ? s.replace(/'/g, "''") : s.replace(/['\\]/g, (c) => c + c);
}

/** One connection, with the server's standard_conforming_strings and encoding; its queries then go through PgWire. */
async function pgConnect(cc: ClientConfig): Promise<PgWire> {
  const client = new Client(cc);
  // a server gone away errors the idle client (PgWire marks itself dead): never crash
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query<{ s: string; e: string }>("SELECT current_setting('standard_conforming_strings') AS s, current_setting('server_encoding') AS e");
    return new PgWire(client, r.rows[0]?.s !== 'off', r.rows[0]?.e ?? '');
  } catch (e) {
    void client.end().catch(() => undefined);
    throw e;
  }
}

export class PgsqlTable extends HostTable<ConnPool<Lane<PgWire>>> implements LookupTable, SqlConnection<Lane<PgWire>> {
  protected readonly t: Templates;
  protected readonly hosts: HostList<ConnPool<Lane<PgWire>>>;
  private readonly timeoutMs: number;
  private toldEncoding = false;

  constructor(cf: CfFile, cfg: TableSettings, log: StoreLog, open: OpenNested) {
    super();
    this.timeoutMs = cfg.mapTimeoutMs;
    const query = cf.has('query') ? cf.str('query', '', 1) : legacyQuery(cf, true);
    this.t = templates(cf, 'query', query, cf.str('result_format', '%s', 1), 'result_format', log, open);
    const base: ClientConfig = {
      user: cf.str('user', '') || undefined,
      password: secret(cf, 'password', 'password_file') || undefined,
      database: cf.required('dbname'),
      application_name: 'smmapd',
    };
    const names = sqlHosts(cf, log);
    const pools = names.map((h) => {
      let target: PgTarget;
      try {
        target = pgHost(h, { ...base, connectionTimeoutMillis: connectTimeout(cfg, names.length) });
      } catch (e) {
        return cf.fail('hosts', (e as Error).message);
      }
      return lanePool(cfg.mapPoolSize, async () => {
        for (let i = 0; ; i++) {
          try {
            return this.sawEncoding(await pgConnect({ ...target.cc, ssl: target.attempts[i] }), cf, log);
          } catch (e) {
            if (i + 1 >= target.attempts.length || !tryNext(e)) throw e;
          }
        }
      });
    });
    this.hosts = new HostList('pgsql', pools, names, log);
  }

  /**
   * Postfix 3.7 talks LATIN1 to the server, smmapd UTF8: the same bytes for ASCII, and in an
   * SQL_ASCII database for everything; in any other a deliberate difference, said once.
   */
  private sawEncoding(w: PgWire, cf: CfFile, log: StoreLog): PgWire {
    if (!this.toldEncoding && w.encoding !== 'SQL_ASCII') {
      this.toldEncoding = true;
      differs(cf, 'dbname', `a ${w.encoding} database: smmapd talks UTF8 to it, Postfix 3.7 talks LATIN1 and so misses keys and misreads values with non-ASCII characters`, log);
    }
    return w;
  }

  /** Quoted for a server with standard_conforming_strings on (the default since PostgreSQL 9.1). */
  describe(key: string): string | null {
    return describeQuery(this.t, key, (s) => pgQuote(s, true));
  }

  lookup(key: string, until = Date.now() + this.timeoutMs): Promise<string | null> {
    return sqlLookup(this.t, key, this.hosts, this, until);
  }

  quote(l: Lane<PgWire>): Quote {
    return (s) => pgQuote(s, l.wire.std);
  }

  query(l: Lane<PgWire>, sql: string): Promise<Rows> {
    return l.wire.query(sql);
  }
}

export function openTable(file: string, cfg: TableSettings, log: StoreLog, open: OpenNested): LookupTable {
  return openCfTable(file, 'pgsql', log, (cf) => new PgsqlTable(cf, cfg, log, open));
}
