// smmapd's command line, Cyrus style (master/service.c: -C -U -T -D; smmapd.c: -p) plus
// our --listen. Parsed by hand: the stdio model pays start-up on every connection.

export interface DaemonArgs {
  readonly config: string | undefined;
  /** undefined when not given: each process model has its own default (behaviour §5). */
  readonly uses: number | undefined;
  readonly timeout: number | undefined;
  readonly skipPlus: boolean;
  readonly debug: boolean;
  readonly listen: string[];
  /** --policy: speak Postfix's policy delegation protocol instead of socketmap. */
  readonly policy: boolean;
  readonly help: boolean;
  readonly version: boolean;
}

export class UsageError extends Error {}

export const USAGE = 'usage: smmapd [-C config] [-U uses] [-T timeout] [-p] [-D] [--policy] [--listen inet:HOST:PORT|unix:PATH]...';

function count(flag: string, v: string | undefined): number {
  if (v === undefined || !/^\d+$/.test(v)) throw new UsageError(`${flag} wants a whole number, not "${v ?? ''}"`);
  return Number(v);
}

export function parseDaemonArgs(argv: readonly string[]): DaemonArgs {
  let config: string | undefined;
  let uses: number | undefined;
  let timeout: number | undefined;
  let skipPlus = false;
  let debug = false;
  let help = false;
  let version = false;
  let policy = false;
  const listen: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    // -Cfile and --listen=spec as well as separate words
    const attached = (flag: string): string | undefined => (a.length > flag.length ? a.slice(flag.length).replace(/^=/, '') : argv[++i]);
    if (a === '--listen' || a.startsWith('--listen=')) {
      const v = attached('--listen');
      if (v === undefined) throw new UsageError('--listen wants an address');
      listen.push(v);
    } else if (a === '--policy') policy = true;
    else if (a === '--help' || a === '-h') help = true;
    else if (a === '--version' || a === '-V') version = true;
    else if (a.startsWith('-C')) {
      config = attached('-C');
      if (config === undefined) throw new UsageError('-C wants a file');
    } else if (a.startsWith('-U')) uses = count('-U', attached('-U'));
    else if (a.startsWith('-T')) timeout = count('-T', attached('-T'));
    else if (a === '-p') skipPlus = true;
    else if (a === '-D') debug = true;
    else throw new UsageError(`unknown argument "${a}"`);
  }
  return { config, uses, timeout, skipPlus, debug, listen, policy, help, version };
}
