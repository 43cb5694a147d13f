#!/usr/bin/env node
// smmapd: answer socketmap lookups like Cyrus's smmapd. Picks its process model from how it
// was started: --listen (own listener), Cyrus master (fd 3/4, CYRUS_SERVICE), systemd
// socket activation (LISTEN_FDS), smmapd_listen/smmapd_policy_listen in the configuration
// (own listener, unless stdin is a socket), or else the one connection on stdin/stdout (inetd).
import { fstatSync } from 'node:fs';
import { ConfigError, loadConfig, type Config } from '../config';
import { chooseDestination, openLogger, stderrIsClient, type FileOwner, type Logger, type ProcessModel } from '../log';
import { EX_CONFIG, EX_OK, EX_TEMPFAIL, EX_USAGE } from '../server/exit-codes';
import { SUPERVISED_DEFAULTS, type LifecycleLimits } from '../server/lifecycle';
import { Service } from '../server/service';
import { closeMaps, openMaps } from '../server/map-answers';
import { ProcessShell } from '../server/shell';
import { parseListenSpec, type ListenSpec } from '../listen-spec';
import { startLine } from '../server/start-line';
import { VERSION } from '../version';
import { parseDaemonArgs, UsageError, USAGE, type DaemonArgs } from './args';

/**
 * A worker forked by our own listener. Node reads and removes NODE_UNIQUE_ID before our code
 * runs (and has loaded node:cluster then), so ask node:cluster, and only in the listener
 * model: the others never load it. A worker has the primary's arguments, --listen too.
 */
function isClusterWorker(model: ProcessModel): boolean {
  return model === 'listener' && (require('node:cluster') as import('node:cluster').Cluster).isWorker;
}

/** Set by the primary for its workers: the addresses it serves, whatever the file says by now. */
const WORKER_LISTEN_ENV = 'SMMAPD_WORKER_LISTEN';

/** Which supervisor started us, from how we were started (see the header); 'stdio' may still become 'listener' (main). */
function processModel(argv: readonly string[]): ProcessModel {
  if (argv.some((a) => a.startsWith('--listen')) || process.env[WORKER_LISTEN_ENV] !== undefined) return 'listener';
  if (process.env.CYRUS_SERVICE !== undefined) return 'cyrus-master';
  if (process.env.LISTEN_FDS !== undefined && process.env.LISTEN_PID === String(process.pid)) return 'systemd';
  return 'stdio';
}

/** Before a logger exists (no configuration yet): stderr unless it is the client's socket
 * (inetd), and syslog too where that is the model's log (Cyrus master, inetd). */
function earlyLog(model: ProcessModel): (msg: string) => void {
  return (msg) => {
    if (!stderrIsClient()) process.stderr.write(`smmapd: ${msg}\n`);
    const dest = chooseDestination('', model);
    if (dest.kind === 'syslog') {
      openLogger({ ident: process.env.CYRUS_SERVICE ?? 'smmapd', destination: dest, syslogFacility: 'mail', syslogSocket: '', threshold: 'error', audit: false, auditLevel: 'notice' }).error(msg);
    }
  };
}

/** Root with smmapd_user set: the user and group a log file we create must belong to (null: no change). */
function logFileOwner(cfg: Config): FileOwner | null {
  if (process.getuid?.() !== 0 || cfg.runUser === '') return null;
  try {
    // only where it applies
    const { lookupGroup, userEntry } = require('../server/users') as typeof import('../server/users');
    const user = userEntry(cfg.runUser);
    return { uid: user.uid, gid: cfg.runGroup !== '' ? lookupGroup(cfg.runGroup) : user.gid };
  } catch {
    return null; // an unknown user is reported where the process switches to it
  }
}

function logger(cfg: Config, model: ProcessModel): Logger {
  const ident = process.env.CYRUS_SERVICE ?? 'smmapd';
  return openLogger({
    fileOwner: logFileOwner(cfg),
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
  const cmd = cfg.debugCommand.replace('%s', () => process.argv[1] ?? 'smmapd').replace('%d', () => String(process.pid));
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

/** Not a listener (nothing to bind): become smmapd_user at once when started as root with it set. */
function dropAtStart(cfg: Config, log: Logger): void {
  if (process.getuid?.() !== 0 || cfg.runUser === '') return;
  // only where it applies
  (require('../server/privileges') as typeof import('../server/privileges')).dropPrivileges(cfg, log, false);
}

/** inetd, xinetd, tcpserver, systemd StandardInput=socket: the client is on stdin. */
function stdinIsSocket(): boolean {
  try {
    return fstatSync(0).isSocket();
  } catch {
    return false;
  }
}

/**
 * What the listener serves: --listen (all of one protocol: --policy's or socketmap) overrides
 * the file; else smmapd_listen (socketmap) and smmapd_policy_listen (policy), only the policy
 * ones with --policy. A worker takes what its primary serves.
 */
function listenSpecs(args: DaemonArgs, cfg: Config): ListenSpec[] {
  const fromPrimary = process.env[WORKER_LISTEN_ENV];
  if (fromPrimary !== undefined) {
    delete process.env[WORKER_LISTEN_ENV]; // not for the programs a worker runs (logger, debug_command)
    return JSON.parse(fromPrimary) as ListenSpec[];
  }
  if (args.listen.length > 0) return args.listen.map((a) => parseListenSpec(a, args.policy ? 'policy' : 'socketmap'));
  return [...(args.policy ? [] : cfg.listen.map((a) => parseListenSpec(a, 'socketmap'))), ...cfg.policyListen.map((a) => parseListenSpec(a, 'policy'))];
}

async function main(args: DaemonArgs, startedAs: ProcessModel, shell: ProcessShell): Promise<void> {
  const cfg = loadConfig(args.config);
  let model = startedAs;
  // `smmapd -C FILE` with addresses in FILE: our own listener (but under inetd the client is on stdin).
  if (model === 'stdio' && listenSpecs(args, cfg).length > 0 && !stdinIsSocket()) model = 'listener';
  const lg = logger(cfg, model);
  shell.useLogger(lg);
  if (args.debug && !isClusterWorker(model)) runDebugCommand(cfg, lg);
  const service = (): Service => new Service(cfg, { configPath: args.config, skipPlus: args.skipPlus, policy: args.policy }, lg);
  process.on('uncaughtException', (e) => shell.fatal(`fatal: ${e.stack ?? String(e)}`, EX_TEMPFAIL));

  switch (model) {
    case 'listener': {
      const { runListener } = await import('../server/roles');
      const specs = listenSpecs(args, cfg);
      if (!isClusterWorker(model)) {
        lg.notice(startLine(cfg, model, specs));
        // A bad smmapd_map_* file is a configuration error at start, not a worker crash loop:
        // the primary parses every map file (no connection is made) before forking.
        if (cfg.maps.length > 0) closeMaps(openMaps(cfg, () => undefined));
      }
      // A listener applies -U/-T only when given (behaviour §5).
      return runListener(specs, { cfg, log: lg, service, shell }, { uses: args.uses ?? 0, timeoutSec: args.timeout ?? 0 });
    }
    case 'cyrus-master': {
      const { runCyrusMaster, MasterStatus } = await import('../server/cyrus-master');
      lg.info(startLine(cfg, model, [])); // a process per connection or few: not a notice each time
      dropAtStart(cfg, lg);
      return runCyrusMaster(service, supervisedLimits(args), shell, masterStatus ?? new MasterStatus());
    }
    case 'systemd': {
      const { runSystemd } = await import('../server/systemd');
      return runSystemd(service, supervisedLimits(args), shell);
    }
    case 'stdio': {
      const { runStdio } = await import('../server/stdio');
      lg.info(startLine(cfg, model, []));
      dropAtStart(cfg, lg);
      return runStdio(service(), shell);
    }
  }
}

const model = processModel(process.argv.slice(2));
const shell: ProcessShell = new ProcessShell(earlyLog(model));
/** Under Cyrus master every exit, even a failed start, says UNAVAILABLE first (a silent exit while "ready" counts against the service). */
const masterStatus =
  model === 'cyrus-master' ? new (require('../server/cyrus-master') as typeof import('../server/cyrus-master')).MasterStatus() : null;
if (masterStatus !== null) shell.onExit(() => masterStatus.leave());

function parsedArgs(): DaemonArgs {
  try {
    return parseDaemonArgs(process.argv.slice(2));
  } catch (e) {
    return shell.fatal(`${(e as Error).message}\n${USAGE}`, EX_USAGE);
  }
}

const args = parsedArgs();
if (args.help || args.version) {
  process.stdout.write(args.help ? `${USAGE}\nSee smmapd(8).\n` : `smmapd ${VERSION}\n`);
  shell.exit(EX_OK);
} else {
  run();
}

function run(): void {
  main(args, model, shell).catch((e: unknown) => {
    const name = (e as Error).name;
    if (e instanceof ConfigError) shell.fatal(e.message, EX_CONFIG);
    if (e instanceof UsageError || name === 'ListenSpecError') shell.fatal((e as Error).message, EX_USAGE);
    // An address that cannot be bound, a user that cannot be become: one line says it all.
    if (name === 'BindError' || name === 'PrivilegeError') shell.fatal((e as Error).message, EX_TEMPFAIL);
    shell.fatal((e as Error).stack ?? String(e), EX_TEMPFAIL);
  });
}
