// Postfix's table configuration files (pgsql_table(5), mysql_table(5), sqlite_table(5),
// ldap_table(5)): `name = value` lines read as cfg_parser.c/dict_load_fp() read them, so an
// admin reuses the .cf files Postfix already has. Every error names the file and line.
import { readFileSync, statSync } from 'node:fs';
import type { StoreLog } from '../core/contract';

export class CfError extends Error {}

export interface CfValue {
  readonly value: string;
  readonly line: number;
}

export class CfFile {
  private readonly used = new Set<string>();

  constructor(
    readonly path: string,
    private readonly values: ReadonlyMap<string, CfValue>,
    /** The line of a logical line that starts with white space (Postfix ignores it, and warns), or 0. */
    readonly ignoredLine = 0,
  ) {}

  /** `file:line: name: why` (or `file: why` for a parameter that is not there). */
  fail(name: string, why: string): never {
    const v = this.values.get(name);
    throw new CfError(v ? `${this.path}:${v.line}: ${name}: ${why}` : `${this.path}: ${name}: ${why}`);
  }

  /** `read(path)` for parameter `name`; failing, `file:line: name: cannot read PATH: ENOENT`. */
  readFor<T>(name: string, path: string, read: (path: string) => T): T {
    try {
      return read(path);
    } catch (e) {
      return this.fail(name, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  /** cfg_get_str(): `min` is the least length a value given must have (Postfix's "must not be empty"). */
  str(name: string, dflt: string, min = 0): string {
    this.used.add(name);
    const v = this.values.get(name);
    if (v === undefined) return dflt;
    if (v.value.length < min) this.fail(name, 'must not be empty');
    return v.value;
  }

  /** A parameter that must be given. */
  required(name: string): string {
    if (!this.values.has(name)) throw new CfError(`${this.path}: ${name} is not set`);
    return this.str(name, '', 1);
  }

  int(name: string, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    this.used.add(name);
    const v = this.values.get(name);
    if (v === undefined) return dflt;
    if (!/^-?\d+$/.test(v.value) || Number(v.value) < min || Number(v.value) > max) {
      this.fail(name, `want a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, not "${v.value}"`);
    }
    return Number(v.value);
  }

  /** cfg_get_bool(): Postfix accepts exactly yes/no (any case). */
  bool(name: string, dflt: boolean): boolean {
    this.used.add(name);
    const v = this.values.get(name);
    if (v === undefined) return dflt;
    const t = v.value.toLowerCase();
    if (t === 'yes') return true;
    if (t === 'no') return false;
    return this.fail(name, `want yes or no, not "${v.value}"`);
  }

  /** Where a parameter was set, for messages about its effect: `file:line`. */
  where(name: string): string {
    const v = this.values.get(name);
    return v ? `${this.path}:${v.line}` : this.path;
  }

  /** Parameters given but never read by the driver (Postfix ignores them too; check-map says so). */
  unused(): string[] {
    return [...this.values.keys()].filter((k) => !this.used.has(k));
  }
}

/** C's isspace() in the C locale, which Postfix's ISSPACE() is: no Unicode spaces. */
const SPACE = ' \t\n\v\f\r';
const isSpace = (c: string | undefined): boolean => c !== undefined && SPACE.includes(c);

/** Without the C white space at both ends (String.trim() would also take Unicode spaces). */
function trimSpace(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isSpace(s[a])) a++;
  while (b > a && isSpace(s[b - 1])) b--;
  return s.slice(a, b);
}

/** A logical line and the line of the file it starts on. */
interface LogicalLine {
  text: string;
  readonly line: number;
}

/**
 * readlline(): the logical lines of a Postfix file. Blank lines and lines whose first
 * non-blank character is `#` are skipped (even between a line and its continuation); a
 * line starting with white space continues the previous one as it is (only the newline
 * goes: its white space stays); a logical line that starts with white space is ignored
 * (Postfix warns; `ignoredLine` says where, 0 when none).
 */
function logicalLines(text: string): { lines: LogicalLine[]; ignoredLine: number } {
  const lines: LogicalLine[] = [];
  let ignoredLine = 0;
  let current: LogicalLine | null = null;
  text.split('\n').forEach((raw, i) => {
    const body = trimSpace(raw);
    if (body === '' || body.startsWith('#')) return;
    if (!isSpace(raw[0])) lines.push((current = { text: raw, line: i + 1 }));
    else if (current !== null) current.text += raw;
    else if (ignoredLine === 0) ignoredLine = i + 1; // only before the first logical line
  });
  return { lines, ignoredLine };
}

/**
 * Parse the text as readlline() and split_nameval() do: `name = value` per logical line,
 * the name without white space, both ends of the value trimmed. A name given twice: the
 * last wins.
 */
export function parseCf(text: string, path: string): CfFile {
  const values = new Map<string, CfValue>();
  const { lines, ignoredLine } = logicalLines(text);
  for (const { text: l, line } of lines) {
    let end = 0;
    while (end < l.length && l[end] !== '=' && !isSpace(l[end])) end++;
    let eq = end;
    while (isSpace(l[eq])) eq++;
    if (end === 0 || l[eq] !== '=') throw new CfError(`${path}:${line}: expected format: name = value`);
    values.set(l.slice(0, end), { value: trimSpace(l.slice(eq + 1)), line });
  }
  return new CfFile(path, values, ignoredLine);
}

export function readCf(path: string): CfFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CfError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseCf(text, path);
}

/** Postfix's CHARS_COMMA_SP list splitting (argv_split: empty items dropped). */
export function splitList(s: string): string[] {
  return s.split(/[,\s]+/).filter((x) => x !== '');
}

/**
 * A secret: `password_file` (our extension, read once at open, trailing newline dropped)
 * wins over the inline value, as smmapd_imap_password_file does for the IMAP backend.
 */
export function secret(cf: CfFile, inline: string, fileParam: string): string {
  const file = cf.str(fileParam, '');
  if (file === '') return cf.str(inline, '');
  return cf.readFor(fileParam, file, (f) => readFileSync(f, 'utf8')).replace(/\r?\n$/, '');
}

/**
 * A deliberate difference from Postfix that this file runs into: logged when the table is
 * opened (and shown by check-map) as `file:line: name: differs from Postfix: why`.
 */
export function differs(cf: CfFile, name: string, why: string, log: StoreLog): void {
  log(`${cf.where(name)}: ${name}: differs from Postfix: ${why}`, 'warning');
}

/** Say which parameters the table does not read (Postfix ignores unknown ones silently; a typo then changes nothing). */
function reportUnused(cf: CfFile, type: string, log: StoreLog): void {
  for (const name of cf.unused()) log(`${cf.where(name)}: ${name} is not used by smmapd's ${type} table (ignored)`, 'warning');
}

/** The secrets a table file may hold inline, and the parameters naming a file that holds one. */
const INLINE_SECRETS = ['password', 'bind_pw'];
const SECRET_FILES = ['password_file', 'bind_pw_file'];

/** `mode 0644` when group or others may read, write or run `path` (ssh's test for a key), else null. */
function tooOpen(path: string): string | null {
  try {
    const mode = statSync(path).mode & 0o777;
    return mode & 0o077 ? `mode 0${mode.toString(8).padStart(3, '0')}` : null;
  } catch {
    return null; // unreadable: the driver has said so already
  }
}

/**
 * A password others can read is a password others have: say so (at start, and in check-map),
 * as ssh does for a private key. Only the user smmapd runs as needs to read these files.
 */
export function reportOpenSecrets(cf: CfFile, log: StoreLog): void {
  const inline = INLINE_SECRETS.filter((p) => cf.has(p) && cf.str(p, '') !== '');
  const mode = inline.length > 0 ? tooOpen(cf.path) : null;
  if (mode !== null) log(`${cf.where(inline[0]!)}: ${inline[0]} is set in a file group or others can read (${mode}): chmod 600 ${cf.path} (readable by the user smmapd runs as), or use ${inline[0]}_file`, 'warning');
  for (const p of SECRET_FILES) {
    const file = cf.has(p) ? cf.str(p, '') : '';
    const m = file !== '' ? tooOpen(file) : null;
    if (m !== null) log(`${cf.where(p)}: ${p} ${file} can be read by group or others (${m}): chmod 600 ${file} (readable by the user smmapd runs as)`, 'warning');
  }
}

/** Every driver's openTable: read FILE, build the table from it, then log what is wrong with the file. */
export function openCfTable<T>(file: string, type: string, log: StoreLog, make: (cf: CfFile) => T): T {
  const cf = readCf(file);
  const table = make(cf);
  if (cf.ignoredLine > 0) log(`${cf.path}:${cf.ignoredLine}: a line starting with white space continues no line before it: ignored, as Postfix ignores it`, 'warning');
  reportUnused(cf, type, log);
  reportOpenSecrets(cf, log);
  return table;
}
