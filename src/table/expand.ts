// Postfix's db_common.c, the part every SQL and LDAP table shares: the `%s %u %d %[1-9]
// %S %U %D %%` templates, the rule that a key lacking what the query needs is not looked up
// at all (NOTFOUND, no query), the `domain` restriction, and the result expansion that joins
// several values with commas. Pure: quoting is the caller's (each table quotes its own way).
import { readFileSync } from 'node:fs';
import { StoreError, type LookupTable, type Maybe, type StoreLog } from '../core/contract';
import { CfError, type CfFile, splitList } from './cf';

const KEY_DOMAIN = 1;
const KEY_USER = 2;
const VALUE_DOMAIN = 4;
const VALUE_USER = 8;

/** db_common_parse() results for the query and the result_format of one table. */
export interface TemplateCtx {
  flags: number;
  /** Highest %[1-9] in the query: keys with fewer domain labels are not looked up. */
  nparts: number;
  /** The `domain` list (lowercase; `!` negates), or null: every key is looked up. */
  domain: DomainEntry[] | null;
}

/** One pattern of the `domain` list: a domain, or a table (`type:file`) in which the domain is looked up. */
export type DomainEntry = { neg: boolean; name: string; table?: undefined } | { neg: boolean; name: string; table: LookupTable };

/** Opens a `type:table` pattern of the domain list (the driver's openTable for that type). */
export type OpenNested = (type: string, file: string) => LookupTable;

export type Quote = (s: string) => string;

export function newCtx(): TemplateCtx {
  return { flags: 0, nparts: 0, domain: null };
}

/** db_common_parse(): record what a template needs; throws on an unknown `%x`. */
export function parseTemplate(ctx: TemplateCtx, format: string, query: boolean, where: string): boolean {
  let dynamic = false;
  for (let i = 0; i < format.length; i++) {
    if (format[i] !== '%') continue;
    const c = format[++i];
    switch (c) {
      case '%':
        break;
      case 'u':
        ctx.flags |= query ? KEY_USER : VALUE_USER;
        dynamic = true;
        break;
      case 'd':
        ctx.flags |= query ? KEY_DOMAIN : VALUE_DOMAIN;
        dynamic = true;
        break;
      case 's':
      case 'S':
        dynamic = true;
        break;
      case 'U':
        ctx.flags |= KEY_USER;
        dynamic = true;
        break;
      case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
        ctx.nparts = Math.max(ctx.nparts, Number(c));
        ctx.flags |= KEY_DOMAIN;
        dynamic = true;
        break;
      case 'D':
        ctx.flags |= KEY_DOMAIN;
        dynamic = true;
        break;
      default:
        throw new CfError(`${where}: invalid ${query ? 'query' : 'result'} template: ${format}`);
    }
  }
  return dynamic;
}

/**
 * db_common_parse_domain(): `domain = a.example, !b.example, /file/of/domains`, read as
 * match_list_parse() reads it: `!` negates the pattern after it, a whole file's patterns
 * too (`!/file`); a `#` starts a comment that Postfix warns about and ignores with the rest
 * of the line; in a file, blank lines and lines starting with `#` are skipped and a line
 * starting with white space continues the one before (readllines()).
 */
export function parseDomain(ctx: TemplateCtx, cf: CfFile, log: StoreLog = () => undefined, open?: OpenNested): void {
  const list = cf.str('domain', '');
  if (list === '') return;
  const out: DomainEntry[] = [];
  ctx.domain = out;
  const parse = (line: string, neg0: boolean, where: string): void => {
    for (const start of splitList(line)) {
      if (start.startsWith('#')) {
        log(`${where}: domain: comment at end of line is not supported (ignored with the rest of the line): ${start}`, 'warning');
        return;
      }
      let neg = neg0;
      let item = start;
      while (item.startsWith('!')) {
        neg = !neg;
        item = item.slice(1);
      }
      if (item === '') cf.fail('domain', "no pattern after '!'");
      if (item.startsWith('/')) {
        const text = cf.readFor('domain', item, (f) => readFileSync(f, 'utf8'));
        // match_list.c reads the file a line at a time (no continuations); `#` only in column 1 starts a comment
        for (const [i, l] of text.split('\n').entries()) if (!l.startsWith('#')) parse(l, neg, `${item}:${i + 1}`);
      } else if (/^[a-z0-9_-]+:/i.test(item)) {
        if (open === undefined) cf.fail('domain', `lookup tables in the domain list are not supported here (${item})`);
        const colon = item.indexOf(':');
        try {
          out.push({ neg, name: item, table: open(item.slice(0, colon).toLowerCase(), item.slice(colon + 1)) });
        } catch (e) {
          closeDomainTables(ctx);
          cf.fail('domain', `${item}: ${(e as Error).message}`);
        }
      } else out.push({ neg, name: item.toLowerCase() });
    }
  };
  parse(list, false, cf.where('domain'));
}

/** Close the tables of the domain list (the table that owns `ctx` is being closed). */
export function closeDomainTables(ctx: TemplateCtx): void {
  for (const d of ctx.domain ?? []) if (d.table) void Promise.resolve(d.table.close()).catch(() => undefined);
}

/**
 * db_common_check_domain(): false = do not look the key up (NOTFOUND). The first pattern
 * that matches decides, as in match_list_match(); a table pattern matches when it has the
 * domain (a table that fails fails the lookup: TEMP). `tables` false (describe()): table
 * patterns are taken to match, nothing is looked up.
 */
export function checkDomain(ctx: TemplateCtx, key: string, tables: true): Maybe<boolean>;
export function checkDomain(ctx: TemplateCtx, key: string, tables?: false): boolean;
export function checkDomain(ctx: TemplateCtx, key: string, tables = false): Maybe<boolean> {
  if (ctx.domain === null) return true;
  const at = key.lastIndexOf('@');
  // no domain, or an empty local part: Postfix skips the key
  if (at <= 0) return false;
  return matchFrom(ctx.domain, 0, key.slice(at + 1).toLowerCase(), tables);
}

function matchFrom(list: readonly DomainEntry[], from: number, dom: string, tables: boolean): Maybe<boolean> {
  for (let i = from; i < list.length; i++) {
    const d = list[i]!;
    if (d.table === undefined) {
      if (d.name === dom) return !d.neg;
      continue;
    }
    if (!tables) return !d.neg;
    const r = d.table.lookup(dom);
    if (typeof (r as Promise<string | null> | null)?.then === 'function') {
      return (r as Promise<string | null>).then((v) => (v !== null ? !d.neg : matchFrom(list, i + 1, dom, tables)));
    }
    if (r !== null) return !d.neg;
  }
  return false;
}

/** Labels of a domain as argv_split(domain, ".") makes them: empty ones dropped. */
function labels(domain: string): string[] {
  return domain.split('.').filter((x) => x !== '');
}

/** A template expanded for one key, before quoting: text[0] sub[0] text[1] ... text[n]. */
export interface Expanded {
  readonly text: readonly string[];
  /** What came from the key or value, to be quoted. */
  readonly subs: readonly string[];
}

/** An expansion with `quote` applied to what came from the key or value. */
export function render(e: Expanded, quote: Quote | null): string {
  let s = e.text[0]!;
  for (let i = 0; i < e.subs.length; i++) s += (quote ? quote(e.subs[i]!) : e.subs[i]!) + e.text[i + 1]!;
  return s;
}

/**
 * db_common_expand(). `key` null: `format` is the query and `value` the lookup key; else
 * `format` is result_format, `value` one result and `key` the lookup key. Appends to `out`
 * (a comma first when it already holds a result) and returns false when the value is
 * skipped (the query must not run / the result adds nothing).
 */
export function expand(ctx: TemplateCtx, format: string, value: string | null, key: string | null, out: string[], quote: Quote | null): boolean {
  const e = expandOnce(ctx, format, value, key);
  if (e === null) return false;
  out.push((out.length > 0 ? ',' : '') + render(e, quote));
  return true;
}

/** The user and domain parts of `s` a template needs (`at`: the last `@`, or -1); null: the string is skipped. */
function split(s: string, flags: number, needDomain: number, needUser: number): { at: number; domain: string | null } | null {
  let at = -1;
  let domain: string | null = null;
  if (flags & (needDomain | needUser)) {
    at = s.lastIndexOf('@');
    if (at >= 0) domain = s.slice(at + 1);
  }
  if (((domain === null || domain === '') && flags & needDomain) || (at === 0 && flags & needUser)) return null;
  return { at, domain };
}

/** db_common_expand() up to the quoting: null when the value is skipped (see expand()). */
export function expandOnce(ctx: TemplateCtx, format: string, value: string | null, key: string | null): Expanded | null {
  if (value === null || value === '') return null;
  const v = split(value, ctx.flags, key !== null ? VALUE_DOMAIN : KEY_DOMAIN, key !== null ? VALUE_USER : KEY_USER);
  if (v === null) return null;
  const k = key !== null ? split(key, ctx.flags, KEY_DOMAIN, KEY_USER) : null;
  if (key !== null && k === null) return null;
  const vdomain = v.domain;
  let parts: string[] | null = null;
  if (ctx.nparts > 0) {
    parts = labels((key !== null ? k!.domain : vdomain) ?? '');
    if (parts.length < ctx.nparts) return null;
  }
  // what each %x stands for (%1 .. %9 checked by parseTemplate)
  const piece = (c: string): string => {
    switch (c) {
      case 's': return value;
      case 'u': return vdomain !== null ? value.slice(0, v.at) : value;
      case 'd': return vdomain ?? '';
      case 'S': return key ?? value;
      case 'U': return key === null ? piece('u') : k!.domain !== null ? key.slice(0, k!.at) : key;
      case 'D': return (key !== null ? k!.domain : vdomain) ?? '';
      default: return parts![parts!.length - Number(c)]!;
    }
  };
  const text: string[] = [];
  const subs: string[] = [];
  let s = '';
  for (let i = 0; i < format.length; i++) {
    const ch = format[i]!;
    if (ch !== '%') s += ch;
    else if (format[++i] === '%') s += '%';
    else {
      text.push(s);
      subs.push(piece(format[i]!));
      s = '';
    }
  }
  text.push(s);
  return { text, subs };
}

/**
 * A table's templates as its driver reads them: query (or query_filter), result_format,
 * domain, expansion_limit.
 */
export interface Templates {
  readonly ctx: TemplateCtx;
  readonly query: string;
  readonly resultFormat: string;
  readonly expansionLimit: number;
}

export function templates(cf: CfFile, queryParam: string, query: string, resultFormat: string, resultParam = 'result_format', log?: (msg: string) => void, open?: OpenNested): Templates {
  const ctx = newCtx();
  parseTemplate(ctx, query, true, cf.where(queryParam));
  parseTemplate(ctx, resultFormat, false, cf.where(resultParam));
  parseDomain(ctx, cf, log, open);
  return { ctx, query, resultFormat, expansionLimit: cf.int('expansion_limit', 0, 0) };
}

/** Expand every value of a result set with result_format; throws on expansion_limit, as Postfix answers an error then. */
export class Results {
  private readonly out: string[] = [];
  private count = 0;

  constructor(
    private readonly t: Templates,
    private readonly key: string,
  ) {}

  add(value: string | null): void {
    if (expand(this.t.ctx, this.t.resultFormat, value, this.key, this.out, null) && this.t.expansionLimit > 0 && ++this.count > this.t.expansionLimit) {
      throw new ExpansionLimit(`expansion limit (${this.t.expansionLimit}) exceeded`);
    }
  }

  /** The joined result, or null when nothing was found. */
  value(): string | null {
    const r = this.out.join('');
    return r === '' ? null : r;
  }
}

export class ExpansionLimit extends StoreError {}
