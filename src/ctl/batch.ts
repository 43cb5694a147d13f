// smmapctl batch: many commands, one transaction. Lines are split like a shell does
// (quotes and backslashes, `#` comments), parsed against the same command table as the
// command line, and run inside one write transaction: the first failing line rolls back
// everything and is named in the error (`batch:17: ...`).
import { parseArgs } from 'node:util';
import type { CtlContext } from './context';
import { UsageError } from './context';
import { explainError } from './names';
import type { CommandSpec, OptionValues } from './spec';

/** A line's failure, named by its line number. Keeps the original error for the exit code. */
export class BatchLineError extends Error {
  constructor(
    readonly line: number,
    readonly original: unknown,
  ) {
    super(`batch:${line}: ${original instanceof Error ? original.message : String(original)}`);
    this.name = 'BatchLineError';
  }
}

/**
 * Split one line into words, POSIX-shell style: '...' is literal; in "..." a backslash
 * escapes only $ ` " \; elsewhere a backslash escapes any character; an unquoted # at the
 * start of a word begins a comment.
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const n = line.length;
  while (i < n) {
    const ch = line[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (ch === '#' && !inWord) {
      break;
    } else if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new UsageError('unterminated single quote');
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (ch === '"') {
      inWord = true;
      i++;
      for (;;) {
        if (i >= n) throw new UsageError('unterminated double quote');
        const c = line[i]!;
        if (c === '"') break;
        if (c === '\\' && i + 1 < n && '$`"\\'.includes(line[i + 1]!)) {
          word += line[i + 1];
          i += 2;
        } else {
          word += c;
          i++;
        }
      }
      i++;
    } else if (ch === '\\') {
      if (i + 1 >= n) throw new UsageError('backslash at end of line');
      word += line[i + 1];
      inWord = true;
      i += 2;
    } else {
      word += ch;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

type ParseOptions = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

/** Finds a line's command by its leading words and parses the rest of it. */
export class BatchParser {
  private readonly byWords = new Map<string, { spec: CommandSpec; options: ParseOptions }>();

  constructor(specs: readonly CommandSpec[]) {
    for (const spec of specs) {
      if (!spec.batch) continue;
      const options: ParseOptions = {};
      for (const o of spec.options ?? []) {
        options[o.long] = { type: o.value === undefined ? 'boolean' : 'string', ...(o.short ? { short: o.short } : {}) };
      }
      this.byWords.set(spec.words.join(' '), { spec, options });
    }
  }

  parse(words: readonly string[]): { spec: CommandSpec; args: string[]; opts: OptionValues } {
    let entry = this.byWords.get(words.slice(0, 2).join(' '));
    let rest = words.slice(2);
    if (entry === undefined || words.length < 2) {
      entry = this.byWords.get(words[0] ?? '');
      rest = words.slice(1);
    }
    if (entry === undefined) {
      const what = words.slice(0, 2).join(' ');
      throw new UsageError(`unknown command "${what}" (batch takes the mailbox, acl, quota and deny commands)`);
    }
    const { spec, options } = entry;
    const name = spec.words.join(' ');
    let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
    try {
      parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true }) as typeof parsed;
    } catch (e) {
      throw new UsageError(`${name}: ${(e as Error).message.replace(/\. To specify a positional.*$/s, '')}`);
    }
    const args = parsed.positionals;
    const required = spec.args.filter((a) => !a.optional).length;
    const variadic = spec.args.some((a) => a.variadic);
    if (args.length < required) throw new UsageError(`${name}: missing ${spec.args[args.length]!.name}`);
    if (!variadic && args.length > spec.args.length) throw new UsageError(`${name}: too many arguments`);
    return { spec, args, opts: parsed.values };
  }
}

/**
 * Run a batch's text in one transaction. Output is held back until the commit, so a failed
 * batch prints nothing but its error. Returns the number of commands run.
 */
export function runBatch(ctx: CtlContext, specs: readonly CommandSpec[], text: string): number {
  const parser = new BatchParser(specs);
  const held: string[] = [];
  const out = ctx.out;
  const store = ctx.store(true);
  let count = 0;
  ctx.out = (line) => held.push(line);
  try {
    store.transaction(() => {
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      try {
        const words = splitWords(lines[i]!);
        if (words.length === 0) continue;
        const { spec, args, opts } = parser.parse(words);
        const r = spec.run(ctx, args, opts);
        if (r instanceof Promise) throw new UsageError(`${spec.words.join(' ')}: not allowed in a batch`);
        count++;
      } catch (e) {
        throw new BatchLineError(i + 1, explainError(ctx, e));
      }
    }
    });
  } finally {
    ctx.out = out;
  }
  for (const line of held) out(line);
  return count;
}
