// One table describes every smmapctl command: commander builds the command line and its
// --help from it, and `batch` parses its lines against the same table, so a command
// behaves alike typed alone or in a batch.
import type { CtlContext } from './context';
import { UsageError } from './context';

export interface ArgSpec {
  readonly name: string;
  readonly optional?: boolean;
  /** Takes every remaining argument (last only). */
  readonly variadic?: boolean;
}

export interface OptionSpec {
  /** Long name without dashes: `storage` for `--storage`. */
  readonly long: string;
  readonly short?: string;
  /** Placeholder for a value-taking option (`KIB|none`); absent for a flag. */
  readonly value?: string;
  readonly description: string;
}

/** The keys of query and explain. */
export const KEYS_ARG: ArgSpec = { name: 'KEY', variadic: true };

/** smmapd -p's option, for the commands that answer as the daemon would. */
export const SKIP_PLUS_OPTION: OptionSpec = { long: 'skip-plus', short: 'p', description: 'drop the +detail, as smmapd -p does' };

export type OptionValues = Readonly<Record<string, string | boolean | undefined>>;

export interface CommandSpec {
  /** `['mailbox', 'create']`, or `['query']`. */
  readonly words: readonly string[];
  readonly args: readonly ArgSpec[];
  readonly options?: readonly OptionSpec[];
  readonly summary: string;
  /** More help text, shown after the options. */
  readonly details?: string;
  /** Allowed as a line of `batch` (must then run synchronously). */
  readonly batch: boolean;
  /** `args`: the positional values in ArgSpec order (a variadic one takes all the rest). */
  run(ctx: CtlContext, args: readonly string[], opts: OptionValues): void | Promise<void>;
}

/** An option's string value, or undefined when not given. */
export function stringOpt(opts: OptionValues, name: string): string | undefined {
  const v = opts[name];
  return typeof v === 'string' ? v : undefined;
}

/** A whole number from 0 (digits only: no signs, exponents or blanks). */
export function parseCount(what: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${what}: want a whole number, not "${text}"`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${what}: ${text} is too large`);
  return n;
}

/** `none` (unlimited) or a whole number. */
export function parseLimit(what: string, text: string): number | null {
  return text.toLowerCase() === 'none' ? null : parseCount(what, text);
}
