// smmapctl's command line: commander, built from the command table in commands.ts.
import { Command, CommanderError } from 'commander';
import { loadConfig } from '../config';
import { VERSION } from '../version';
import { BatchLineError } from './batch';
import { COMMANDS, GROUPS } from './commands';
import { CtlContext, EX_USAGE, exitCodeOf } from './context';
import { explainError } from './names';
import type { CommandSpec } from './spec';

export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const processIo: Io = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

function argText(spec: CommandSpec['args'][number]): string {
  const inner = spec.variadic ? `${spec.name}...` : spec.name;
  return spec.optional ? `[${inner}]` : `<${inner}>`;
}

/** The positional values in ArgSpec order, a variadic one spread. */
function positionals(spec: CommandSpec, processed: readonly unknown[]): string[] {
  const out: string[] = [];
  spec.args.forEach((a, i) => {
    const v = processed[i];
    if (a.variadic && Array.isArray(v)) out.push(...(v as string[]));
    else if (typeof v === 'string') out.push(v);
  });
  return out;
}


function build(io: Io, output: string[]): Command {
  const program = new Command('smmapctl')
    .description('Administer the smmapd mailbox store (mailboxes, ACLs, quotas, deny list) and ask it questions.')
    .version(`smmapctl ${VERSION}`, '-V, --version', 'print the version and exit')
    .option('-C, --config <file>', 'configuration file in imapd.conf syntax (default /etc/smmapd.conf)')
    .helpCommand(false)
    .exitOverride()
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      outputError: (str, write) => write(`smmapctl: ${str.replace(/^error: /, '')}`),
    });
  const groups = new Map<string, Command>();
  for (const spec of COMMANDS) {
    let parent = program;
    if (spec.words.length === 2) {
      const g = spec.words[0]!;
      if (!groups.has(g)) groups.set(g, program.command(g).description(GROUPS[g] ?? '').helpCommand(false));
      parent = groups.get(g)!;
    }
    const cmd = parent.command(spec.words[spec.words.length - 1]!).description(spec.summary);
    for (const a of spec.args) cmd.argument(argText(a));
    for (const o of spec.options ?? []) {
      const flags = `${o.short ? `-${o.short}, ` : ''}--${o.long}${o.value ? ` <${o.value}>` : ''}`;
      cmd.option(flags, o.description);
    }
    if (spec.details) cmd.addHelpText('after', `\n${spec.details}`);
    cmd.action(async (...params: unknown[]) => {
      const self = params[params.length - 1] as Command;
      const cfg = loadConfig(self.optsWithGlobals<{ config?: string }>().config);
      const ctx = new CtlContext(cfg, (line) => void output.push(line));
      try {
        await spec.run(ctx, positionals(spec, self.processedArgs), self.opts());
      } catch (e) {
        throw explainError(ctx, e);
      } finally {
        ctx.close();
      }
    });
  }
  return program;
}

/** Run one smmapctl invocation; resolves to the exit code. Output is written once, at the end. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const output: string[] = [];
  const flush = (): void => {
    if (output.length > 0) io.stdout(`${output.join('\n')}\n`);
  };
  try {
    await build(io, output).parseAsync([...argv], { from: 'user' });
    flush();
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has already written its message (or the help asked for).
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : EX_USAGE;
    }
    io.stderr(`smmapctl: ${e instanceof Error ? e.message : String(e)}\n`);
    return exitCodeOf(e instanceof BatchLineError ? e.original : e);
  }
}
