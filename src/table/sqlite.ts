// sqlite:FILE, Postfix's sqlite_table(5) with better-sqlite3, opened read-only. The key is
// quoted as sqlite3_mprintf("%q") quotes it for Postfix (single quotes doubled) and only the
// first column of each row counts, as in dict_sqlite.c.
import Database from 'better-sqlite3';
import type { OpenNested, TableSettings } from './driver';
import { StoreError, type LookupTable, type Maybe, type StoreLog } from '../core/contract';
import { openCfTable, type CfFile } from './cf';
import { checkDomain, closeDomainTables, render, templates, type Templates } from './expand';
import { describeQuery, legacyQuery, prepareQuery, results } from './sql';

/**
 * The first statement of `sql`, as sqlite3_prepare_v2() compiles it for Postfix (the rest,
 * its tail, is never run): up to the first `;` outside quotes, brackets and comments.
 */
export function firstStatement(sql: string): string {
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === '`') {
      // a doubled quote inside is the quote itself: scanning on from the next one is the same
      const end = sql.indexOf(c, i + 1);
      if (end < 0) return sql;
      i = end;
    } else if (c === '[') {
      const end = sql.indexOf(']', i + 1);
      if (end < 0) return sql;
      i = end;
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      if (end < 0) return sql;
      i = end;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) return sql;
      i = end + 1;
    } else if (c === ';') return sql.slice(0, i + 1);
  }
  return sql;
}

export function sqliteQuote(s: string): string {
  return s.replace(/'/g, "''");
}

/** sqlite3_column_text() of a value: integers exactly, reals as SQLite's %!.15g, blobs as their bytes. */
function text(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    let s = v.toPrecision(15);
    if (s.includes('e')) {
      const [m, e] = s.split('e');
      s = `${m!.includes('.') ? m!.replace(/0+$/, '').replace(/\.$/, '.0') : m + '.0'}e${e!.startsWith('-') ? '-' : '+'}${e!.replace(/^[-+]/, '').padStart(2, '0')}`;
    } else if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '.0');
    else s += '.0';
    return s;
  }
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return String(v);
}

export class SqliteTable implements LookupTable {
  private readonly t: Templates;
  private readonly dbpath: string;
  private db: Database.Database | null = null;

  constructor(cf: CfFile, private readonly cfg: TableSettings, log: StoreLog, open: OpenNested) {
    this.dbpath = cf.required('dbpath');
    const query = cf.has('query') ? cf.str('query', '', 1) : legacyQuery(cf, false);
    this.t = templates(cf, 'query', query, cf.str('result_format', '%s', 1), 'result_format', log, open);
  }

  private open(): Database.Database {
    if (this.db === null) {
      try {
        this.db = new Database(this.dbpath, { readonly: true, fileMustExist: true, timeout: Math.min(this.cfg.mapTimeoutMs, 2000) });
      } catch (e) {
        throw new StoreError(`sqlite: cannot open ${(e as NodeJS.ErrnoException).code ?? 'database'}`, { cause: e });
      }
    }
    return this.db;
  }

  describe(key: string): string | null {
    return describeQuery(this.t, key, sqliteQuote);
  }

  lookup(key: string): Maybe<string | null> {
    const ok = checkDomain(this.t.ctx, key, true);
    if (typeof ok !== 'boolean') return ok.then((yes) => (yes ? this.run(key) : null));
    return ok ? this.run(key) : null;
  }

  /** The query expanded once and quoted, run on the file, its rows' first columns expanded and joined. */
  private run(key: string): string | null {
    const q = prepareQuery(this.t, key);
    if (q === null) return null;
    try {
      const stmt = this.open().prepare(firstStatement(render(q, sqliteQuote))).raw(true).safeIntegers(true);
      if (!stmt.reader) return null;
      return results(this.t, key, stmt.iterate() as Iterable<unknown[]>, true, text);
    } catch (e) {
      if (e instanceof StoreError) throw e;
      // a database replaced or corrupt: reopen next time
      this.closeDb();
      throw new StoreError(`sqlite: ${(e as { code?: string }).code ?? (e as Error).message}`, { cause: e });
    }
  }

  private closeDb(): void {
    this.db?.close();
    this.db = null;
  }

  close(): void {
    closeDomainTables(this.t.ctx);
    this.closeDb();
  }
}

export function openTable(file: string, cfg: TableSettings, log: StoreLog, open: OpenNested): LookupTable {
  return openCfTable(file, 'sqlite', log, (cf) => new SqliteTable(cf, cfg, log, open));
}
