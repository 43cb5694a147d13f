#!/usr/bin/env node
// smmapd: answer socketmap lookups like Cyrus's smmapd. Picks its process model from how it
// was started: --listen (own listener), Cyrus master (fd 3/4, CYRUS_SERVICE), systemd
// socket activation (LISTEN_FDS), or else the one connection on stdin/stdout (inetd).
import { ConfigError, loadConfig, type Config } from '../config';
import { chooseDestination, openLogger, stderrIsClient, type Logger, type ProcessModel } from '../log';
import { SUPERVISED_DEFAULTS, type LifecycleLimits } from '../server/lifecycle';
import { Service } from '../server/service';
import { parseDaemonArgs, UsageError, USAGE, type DaemonArgs } from './args';

const EX_USAGE = 64;
const EX_CONFIG = 78;
const EX_TEMPFAIL = 75;

/**
 * A worker forked by our own listener (node:cluster marks its workers with NODE_UNIQUE_ID).
 * Read from the environment so the other models never load node:cluster.
 */
const isClusterWorker = process.env.NODE_UNIQUE_ID !== undefined;

/** Which supervisor started us, from how we were started (see the header). */
function processModel(argv: readonly string[]): ProcessModel {
  if (argv.some((a) => a.startsWith('--listen')) || isClusterWorker) return 'listener';
  if (process.env.CYRUS_SERVICE !== undefined) return 'cyrus-master';
  if (process.env.LISTEN_FDS !== undefined && process.env.LISTEN_PID === String(process.pid)) return 'systemd';
  return 'stdio';
}

const model = processModel(process.argv.slice(2));
let log: Logger | null = null;

/** Exit now: the master is told first (a silent exit while "ready" counts against the service). */
function exitNow(code: number): never {
  if (model === 'cyrus-master') (require('../server/cyrus-master') as typeof import('../server/cyrus-master')).leaveMaster();
  process.exit(code);
}

/**
 * Log and exit. Lines reach the syslog child before process.exit(): libuv writes to an idle
 * pipe at once, and the detached child reads to EOF after we are gone.
 */
function die(msg: string, code: number): never {
  if (log !== null) log.error(msg);
  else {
    // No configuration (yet): stderr unless it is the client's socket (inetd), and syslog
    // too where that is the model's log (Cyrus master, inetd).
    if (!stderrIsClient()) process.stderr.write(`smmapd: ${msg}\n`);
    const dest = chooseDestination('', model);
    if (dest.kind === 'syslog') {
      openLogger({ ident: process.env.CYRUS_SERVICE ?? 'smmapd', destination: dest, syslogFacility: 'mail', syslogSocket: '', threshold: 'error', audit: false, auditLevel: 'notice' }).error(msg);
    }
  }
  exitNow(code);
}

function logger(cfg: Config): Logger {
  const ident = process.env.CYRUS_SERVICE ?? 'smmapd';
  return openLogger({
    ident,
    destination: chooseDestination(cfg.logTarget, model),
    syslogFacility: cfg.syslogFacility,
    syslogSocket: cfg.syslogSocket,
    threshold: cfg.logLevel,
    audit: cfg.audit,
    auditLevel: cfg.auditLevel,
  });
}

/** -D: run debug_command with the program name and our pid, as Cyrus does. */
function runDebugCommand(cfg: Config, log: Logger): void {
  if (cfg.debugCommand === '') return log.warning('-D given but debug_command is not set');
  const cmd = cfg.debugCommand.replace('%s', process.argv[1] ?? 'smmapd').replace('%d', String(process.pid));
  log.notice(`running external debugger: ${cmd}`);
  try {
    (require('node:child_process') as typeof import('node:child_process')).execSync(cmd, { stdio: 'inherit', shell: '/bin/sh' });
  } catch (e) {
    log.error(`debug_command failed: ${(e as Error).message}`);
  }
}

/** Started by a supervisor: -U/-T default as for Cyrus's own services (behaviour §5). */
function supervisedLimits(args: DaemonArgs): LifecycleLimits {
  return { uses: args.uses ?? SUPERVISED_DEFAULTS.uses, timeoutSec: args.timeout ?? SUPERVISED_DEFAULTS.timeoutSec };
}

async function main(args: DaemonArgs): Promise<void> {
  const cfg = loadConfig(args.config);
  const lg = logger(cfg);
  log = lg;
  if (args.debug && !isClusterWorker) runDebugCommand(cfg, lg);
  const service = (): Service => new Service(cfg, { configPath: args.config, skipPlus: args.skipPlus }, lg);
  process.on('uncaughtException', (e) => {
    die(`fatal: ${e.stack ?? String(e)}`, EX_TEMPFAIL);
  });

  switch (model) {
    case 'listener': {
      const { parseListenSpec, runListener } = await import('../server/listener');
      const specs = args.listen.map(parseListenSpec);
      // A listener applies -U/-T only when given (behaviour §5).
      return runListener(specs, { cfg, log: lg, service }, { uses: args.uses ?? 0, timeoutSec: args.timeout ?? 0 });
    }
    case 'cyrus-master': {
      const { runCyrusMaster } = await import('../server/cyrus-master');
      return runCyrusMaster(service, supervisedLimits(args));
    }
    case 'systemd': {
      const { runSystemd } = await import('../server/systemd');
      return runSystemd(service, supervisedLimits(args));
    }
    case 'stdio': {
      const { runStdio } = await import('../server/stdio');
      return runStdio(service());
    }
  }
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
  die((e as Error).stack ?? String(e), EX_TEMPFAIL);
});
