// pgsql:FILE, Postfix's pgsql_table(5) with the `pg` client. The key is escaped as libpq's
// PQescapeStringConn escapes it for Postfix (quotes doubled; backslashes too when the
// server has standard_conforming_strings off) and the query goes out as one simple-protocol
// statement, so the server sees the very text postmap sends.
import { Client, type ClientConfig } from 'pg';
import type { Config } from '../config';
import type { LookupTable } from '../core/contract';
import { openCfTable, secret, splitList, type CfFile } from './cf';
import { templates, type Templates } from './expand';
import { connectTimeout, ConnPool, HostList, QueryError } from './hosts';
import { describeQuery, legacyQuery, sqlLookup, type Rows } from './sql';

interface PgConn {
  client: Client;
  /** standard_conforming_strings, read once per connection. */
  std: boolean;
  dead: boolean;
}

/** Every value as the text the server sent (Postfix reads PQgetvalue text): no type parsing. */
const RAW_TYPES = { getTypeParser: () => (v: string) => v };

/** A hosts entry as Postfix's host_init() reads it: postgresql:// URI, unix:/dir, inet:host:port, host[:port]. */
export function pgHost(h: string, base: ClientConfig): ClientConfig {
  if (h.startsWith('postgresql:')) return { ...base, connectionString: h };
  const d = h.startsWith('unix:') || h.startsWith('inet:') ? h.slice(5) : h;
  if (d === '' || d.startsWith('/')) return { ...base, host: d || '/var/run/postgresql' };
  const colon = d.lastIndexOf(':');
  if (colon < 0) return { ...base, host: d };
  return { ...base, host: d.slice(0, colon), port: Number(d.slice(colon + 1)) || 5432 };
}

/** PQescapeStringConn() for a UTF-8 string (keys are checked to be valid UTF-8 before). */
export function pgQuote(s: string, std: boolean): string {
  return std ? s.replace(/'/g, "''") : s.replace(/['\\]/g, (c) => c + c);
}

export class PgsqlTable implements LookupTable {
  private readonly t: Templates;
  private readonly hosts: HostList<ConnPool<PgConn>>;
  private readonly timeoutMs: number;

  constructor(cf: CfFile, cfg: Config, log: (m: string) => void) {
    const query = cf.has('query') ? cf.str('query', '', 1) : legacyQuery(cf);
    this.t = templates(cf, 'query', query, cf.str('result_format', '%s', 1));
    this.timeoutMs = cfg.mapTimeoutMs;
    const base: ClientConfig = {
      user: cf.str('user', '') || undefined,
      password: secret(cf, 'password', 'password_file') || undefined,
      database: cf.required('dbname'),
      application_name: 'smmapd',
    };
    const names = splitList(cf.str('hosts', ''));
    if (names.length === 0) names.push('localhost');
    const pools = names.map((h) => {
      const cc = pgHost(h, { ...base, connectionTimeoutMillis: connectTimeout(cfg, names.length) });
      return new ConnPool<PgConn>(
        cfg.mapPoolSize,
        async () => {
          const client = new Client(cc);
          const conn: PgConn = { client, std: true, dead: false };
          // a server gone away errors the idle client: mark it, never crash
          client.on('error', () => (conn.dead = true));
          client.on('end', () => (conn.dead = true));
          try {
            await client.connect();
            const r = await client.query<{ s: string }>('SHOW standard_conforming_strings');
            conn.std = r.rows[0]?.s !== 'off';
          } catch (e) {
            void client.end().catch(() => undefined);
            throw e;
          }
          return conn;
        },
        // abandoned mid-query: close the socket now (end() would wait for the hung server)
        (c, abandoned) => (abandoned ? c.client.connection.stream.destroy() : void c.client.end().catch(() => undefined)),
        (c) => !c.dead,
      );
    });
    this.hosts = new HostList('pgsql', pools, names, log);
  }

  /** Quoted for a server with standard_conforming_strings on (the default since PostgreSQL 9.1). */
  describe(key: string): string | null {
    return describeQuery(this.t, key, (s) => pgQuote(s, true));
  }

  lookup(key: string, until = Date.now() + this.timeoutMs): Promise<string | null> {
    return sqlLookup(this.t, key, (build) =>
      this.hosts.run((pool, _i, hostUntil) =>
        pool.use(async (c) => {
          let res;
          try {
            res = await c.client.query({ text: build((s) => pgQuote(s, c.std)), rowMode: 'array', types: RAW_TYPES });
          } catch (e) {
            // the server answered with an SQL error: the query is wrong, not the host
            if ((e as { severity?: string }).severity === 'ERROR' && !c.dead) throw new QueryError((e as Error).message);
            throw e;
          }
          // several statements: PQexec keeps the last result
          const last = Array.isArray(res) ? res[res.length - 1] : res;
          return ((last?.rows ?? []) as unknown[][]).map((r) => r.map((v) => (v === null ? null : String(v)))) as Rows;
        }, hostUntil),
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
  return openCfTable(file, 'pgsql', log, (cf) => new PgsqlTable(cf, cfg, log));
}
