// What the pgsql, mysql and sqlite tables share (Postfix's dict_pgsql/mysql/sqlite lookup
// functions are the same steps): skip keys the domain list or the query template rule out,
// expand the query with the table's own quoting, run it on the first host that answers,
// expand every value with result_format and join them with commas.
import { CfError, type CfFile } from './cf';
import { checkDomain, expand, Results, type Quote, type Templates } from './expand';

/** Rows of text values (NULL = null), as libpq/libmysqlclient hand them to Postfix. */
export type Rows = ReadonlyArray<ReadonlyArray<string | null>>;

/** Run the query built by `build` (given the connection's quoting) somewhere; throw when the directory cannot answer. */
export type Exec = (build: (quote: Quote) => string) => Promise<Rows>;

/** The query for `key` with `quote`, or null: Postfix does not run it (NOTFOUND). */
export function buildQuery(t: Templates, key: string, quote: Quote | null): string | null {
  const out: string[] = [];
  return expand(t.ctx, t.query, key, null, out, quote) ? out.join('') : null;
}

/** What describe() shows: the query a lookup of `key` runs, or null when it is skipped. */
export function describeQuery(t: Templates, key: string, quote: Quote): string | null {
  if (!checkDomain(t.ctx, key) || buildQuery(t, key, null) === null) return null;
  return buildQuery(t, key, quote);
}

/** One lookup. `firstColumnOnly`: sqlite reads column 0 of each row, the others every column. */
export async function sqlLookup(t: Templates, key: string, exec: Exec, firstColumnOnly = false): Promise<string | null> {
  if (!(await checkDomain(t.ctx, key, true))) return null;
  // the check without quoting: a key that cannot fill the template never reaches a server
  if (buildQuery(t, key, null) === null) return null;
  const rows = await exec((quote) => buildQuery(t, key, quote)!);
  const res = new Results(t, key);
  for (const row of rows) {
    if (firstColumnOnly) res.add(row[0] ?? null);
    else for (const v of row) res.add(v);
  }
  return res.value();
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
