// What the pgsql, mysql and sqlite tables share (Postfix's dict_pgsql/mysql/sqlite lookup
// functions are the same steps): skip keys the domain list or the query template rule out,
// expand the query, run it with the table's own quoting on the first host that answers,
// expand every value with result_format and join them with commas (sqlLookup).
import { isPromise, type StoreLog } from '../core/contract';
import { CfError, differs, splitList, type CfFile } from './cf';
import { checkDomain, expandOnce, render, Results, type Expanded, type Quote, type Templates } from './expand';
import type { ConnPool, HostList } from './hosts';

/** Rows of text values (NULL = null), as libpq/libmysqlclient hand them to Postfix. */
export type Rows = ReadonlyArray<ReadonlyArray<string | null>>;

/** What a SQL driver does with one of its connections; sqlLookup does the rest. */
export interface SqlConnection<C> {
  /** The connection's quoting (pgsql's depends on the server's standard_conforming_strings). */
  quote(c: C): Quote;
  /** Run `sql` on `c`: its rows; QueryError when the server says the query itself is wrong. */
  query(c: C, sql: string): Promise<Rows>;
}

/** The query for `key` expanded (once, unquoted), or null: Postfix does not run it (NOTFOUND). */
export function prepareQuery(t: Templates, key: string): Expanded | null {
  return expandOnce(t.ctx, t.query, key, null);
}

/** What describe() shows: the query a lookup of `key` runs, or null when it is skipped. */
export function describeQuery(t: Templates, key: string, quote: Quote): string | null {
  if (!checkDomain(t.ctx, key)) return null;
  const q = prepareQuery(t, key);
  return q === null ? null : render(q, quote);
}

/**
 * One lookup on a SQL directory, top-down: skip the keys Postfix skips (the domain list, a
 * key that cannot fill the query: these never reach a server), expand the query once; then
 * on the first host that answers (hosts.ts) acquire a connection, quote the key as it
 * quotes, run the query, release the connection; `until` is the lookup's one deadline, kept
 * by the pool. Every value of every row (`firstColumnOnly`: sqlite's column 0) is expanded
 * with result_format and joined.
 */
export function sqlLookup<C>(t: Templates, key: string, hosts: HostList<ConnPool<C>>, conn: SqlConnection<C>, until: number): Promise<string | null> {
  const inDomain = checkDomain(t.ctx, key, true);
  // a domain list naming tables may have to look; the usual one answers at once
  if (isPromise(inDomain)) return inDomain.then((yes) => (yes ? sqlQuery(t, key, hosts, conn, until) : null));
  return inDomain ? sqlQuery(t, key, hosts, conn, until) : Promise.resolve(null);
}

function sqlQuery<C>(t: Templates, key: string, hosts: HostList<ConnPool<C>>, conn: SqlConnection<C>, until: number): Promise<string | null> {
  const q = prepareQuery(t, key);
  if (q === null) return Promise.resolve(null);
  return hosts.run((pool, _i, hostUntil) => pool.use((c) => conn.query(c, render(q, conn.quote(c))), hostUntil), until).then((rows) => results(t, key, rows, false));
}

/** The rows' values expanded with result_format and joined; null when there is none. */
export function results(t: Templates, key: string, rows: Iterable<ReadonlyArray<unknown>>, firstColumnOnly: boolean, text: (v: unknown) => string | null = (v) => v as string | null): string | null {
  const res = new Results(t, key);
  for (const row of rows) {
    if (firstColumnOnly) res.add(text(row[0] ?? null));
    else for (const v of row) res.add(text(v));
  }
  return res.value();
}

/**
 * A pgsql or mysql file's hosts (default localhost). Several are tried in the order given
 * (hosts.ts), a deliberate difference from Postfix that is logged at open.
 */
export function sqlHosts(cf: CfFile, log: StoreLog): string[] {
  const names = splitList(cf.str('hosts', ''));
  if (names.length === 0) names.push('localhost');
  if (names.length > 1) {
    differs(cf, 'hosts', 'tried in the order given, and a failed host again after at most 2 s; Postfix tries UNIX-domain sockets first, the others at random, and keeps away from a failed host for 60 s', log);
  }
  return names;
}

/**
 * The old `select_field`/`table`/`where_field` form (db_common_sql_build_query); with
 * `selectFunction` (pgsql only, as dict_pgsql.c reads it) `select_function` comes first.
 */
export function legacyQuery(cf: CfFile, selectFunction: boolean): string {
  const fn = selectFunction ? cf.str('select_function', '') : '';
  if (fn !== '') return `SELECT ${fn}('%s')`;
  if (!cf.has('table')) throw new CfError(`${cf.path}: query is not set`);
  const extra = cf.str('additional_conditions', '');
  return `SELECT ${cf.required('select_field')} FROM ${cf.required('table')} WHERE ${cf.required('where_field')}='%s' ${extra}`;
}
