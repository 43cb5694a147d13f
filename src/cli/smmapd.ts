#!/usr/bin/env node
// smmapd: answer socketmap lookups like Cyrus's smmapd. Picks its process model from how it
// was started: --listen (own listener), Cyrus master (fd 3/4, CYRUS_SERVICE), systemd
// socket activation (LISTEN_FDS), or else the one connection on stdin/stdout (inetd).
import { execSync } from 'node:child_process';
import cluster from 'node:cluster';
import { ConfigError, loadConfig, type Config } from '../config';
import { fileSink, makeLogger, stderrSink, type Logger } from '../log';
import { Service } from '../server/service';
import { parseDaemonArgs, UsageError, USAGE, type DaemonArgs } from './args';

const EX_USAGE = 64;
const EX_CONFIG = 78;

function die(msg: string, code: number): never {
  process.stderr.write(`smmapd: ${msg}\n`);
  process.exit(code);
}

function logger(cfg: Config): Logger {
  const ident = process.env.CYRUS_SERVICE ?? 'smmapd';
  const sink = cfg.logTarget === '' ? stderrSink() : fileSink(cfg.logTarget);
  return makeLogger(ident, cfg.audit && cfg.logLevel !== 'debug' ? 'notice' : cfg.logLevel, sink);
}

/** -D: run debug_command with the program name and our pid, as Cyrus does. */
function runDebugCommand(cfg: Config, log: Logger): void {
  if (cfg.debugCommand === '') return log.warning('-D given but debug_command is not set');
  const cmd = cfg.debugCommand.replace('%s', process.argv[1] ?? 'smmapd').replace('%d', String(process.pid));
  log.notice(`running external debugger: ${cmd}`);
  try {
    execSync(cmd, { stdio: 'inherit', shell: '/bin/sh' });
  } catch (e) {
    log.error(`debug_command failed: ${(e as Error).message}`);
  }
}

async function main(args: DaemonArgs): Promise<void> {
  const cfg = loadConfig(args.config);
  const log = logger(cfg);
  if (args.debug && !cluster.isWorker) runDebugCommand(cfg, log);
  const service = (): Service => new Service(cfg, { configPath: args.config, skipPlus: args.skipPlus }, log);
  process.on('uncaughtException', (e) => {
    log.error(`fatal: ${e.stack ?? String(e)}`);
    process.exit(75);
  });

  if (args.listen.length > 0 || cluster.isWorker) {
    const { parseListenSpec, runListener } = await import('../server/listener');
    const specs = args.listen.map(parseListenSpec);
    // A listener applies -U/-T only when given (SPEC §5).
    return runListener(specs, { cfg, log, service }, { uses: args.uses ?? 0, timeoutSec: args.timeout ?? 0 });
  }
  // Started by a supervisor: Cyrus's defaults apply (-U 250, -T 60).
  const limits = { uses: args.uses ?? 250, timeoutSec: args.timeout ?? 60 };
  if (process.env.CYRUS_SERVICE !== undefined) {
    const { runCyrusMaster } = await import('../server/cyrus-master');
    return runCyrusMaster(service(), limits);
  }
  if (process.env.LISTEN_FDS !== undefined && process.env.LISTEN_PID === String(process.pid)) {
    const { runSystemd } = await import('../server/systemd');
    return runSystemd(service(), limits);
  }
  const { runStdio } = await import('../server/stdio');
  return runStdio(service());
}

let args: DaemonArgs;
try {
  args = parseDaemonArgs(process.argv.slice(2));
} catch (e) {
  die(`${(e as Error).message}\n${USAGE}`, EX_USAGE);
}
if (args.help) {
  process.stdout.write(`${USAGE}\nSee smmapd(8).\n`);
  process.exit(0);
}
if (args.version) {
  process.stdout.write(`smmapd ${(require('../../package.json') as { version: string }).version}\n`);
  process.exit(0);
}
main(args).catch((e: unknown) => {
  if (e instanceof ConfigError) die(e.message, EX_CONFIG);
  if (e instanceof UsageError || (e as Error).name === 'ListenSpecError') die((e as Error).message, EX_USAGE);
  die((e as Error).stack ?? String(e), 75);
});
