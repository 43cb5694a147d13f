// The listener's primary (smmapd_workers > 1): binds nothing itself but owns the listening
// sockets node:cluster creates for the workers, forks the workers and keeps them alive
// (within bounds), relays signals, counts -U/-T, and owns the unix socket files.
//
// Scheduling: SCHED_NONE, the workers accept on the shared sockets themselves. node:cluster's
// default (round-robin) has the primary accept every connection and pass it to a worker over
// IPC; out of descriptors, a passed handle is lost in transit, the primary waits for that
// worker's acknowledgement for ever and queues every later connection (its fd count grows,
// nobody is answered), and a connection passed to a worker that dies is never closed. With
// SCHED_NONE, connections wait in the kernel's queue until a worker accepts; out of
// descriptors libuv closes what it cannot take (a spare descriptor kept for that) and goes on.
import cluster, { type Worker } from 'node:cluster';
import { loadConfig, type Config } from '../config';
import type { Logger } from '../log';
import { kindOf, type PrimaryMsg, type WorkerMsg } from './cluster-messages';
import { EX_OK, EX_TEMPFAIL } from './exit-codes';
import { Lifecycle, type LifecycleLimits } from './lifecycle';
import { describeSpecs, type ListenSpec } from './listen-spec';
import { logRestartOnly, socketSettingsChanged } from './listener';
import { isRoot } from './privileges';
import type { ProcessShell } from './shell';
import { clearStaleSocket, UnixSocketFile } from './unix-socket';
import { backoffDelay } from '../backoff';

/** Restart delay after a worker died: doubles per recent crash, from the first to the last. */
const RESTART_DELAY_MIN_MS = 200;
const RESTART_DELAY_MAX_MS = 10_000;
/** This many worker deaths within the window and the primary gives up (EX_TEMPFAIL). */
const CRASH_LIMIT = 10;
const CRASH_WINDOW_MS = 60_000;
/** After a shutdown request, how much longer than the workers' drain bound the primary waits. */
const SHUTDOWN_GRACE_MS = 1000;

/**
 * When to start a worker again after one died: a delay that doubles with each death in the
 * window, or null once there were `limit` deaths in it (give up: something is wrong that a
 * restart will not mend, and a tight loop would only fill the log).
 */
export class RestartBudget {
  private readonly deaths: number[] = [];

  constructor(
    private readonly limit = CRASH_LIMIT,
    private readonly windowMs = CRASH_WINDOW_MS,
  ) {}

  /** A worker died at `now`: the delay before its replacement, or null to give up. */
  died(now: number): number | null {
    this.deaths.push(now);
    while (this.deaths.length > 0 && this.deaths[0]! <= now - this.windowMs) this.deaths.shift();
    if (this.deaths.length >= this.limit) return null;
    return backoffDelay(this.deaths.length, RESTART_DELAY_MIN_MS, RESTART_DELAY_MAX_MS);
  }

  /** Deaths within the window. */
  get recent(): number {
    return this.deaths.length;
  }
}

export interface PrimaryOptions {
  /** The configuration a SIGHUP loaded (the metrics listener's smmapd_allow_from follows it). */
  readonly reloaded?: (cfg: Config) => void;
}

export async function runPrimary(specs: ListenSpec[], cfg: Config, log: Logger, limits: LifecycleLimits, shell: ProcessShell, opts: PrimaryOptions = {}): Promise<void> {
  // What the daemon started with: a reload cannot change these (restartOnlyChanges). The
  // configured count of workers is what the primary keeps trying to reach.
  const started = cfg;
  const want = cfg.workers;
  for (const s of specs) if (s.kind === 'unix') await clearStaleSocket(s.path);
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ silent: false });
  const socketFiles = (): UnixSocketFile[] => specs.flatMap((s) => (s.kind === 'unix' ? [new UnixSocketFile(s.path)] : []));
  let files = socketFiles();
  if (isRoot() && cfg.runUser === '') log.warning('running as root: set smmapd_user (and smmapd_group) to run the workers as an unprivileged user');

  let stopping = false;
  let exitCode = EX_OK;
  const workers = new Set<Worker>();
  const tell = (m: PrimaryMsg): void => {
    for (const w of workers) if (w.isConnected()) w.send(m);
  };
  const exitAll = (why: string, code = EX_OK): void => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    if (code === EX_OK) log.notice(`shutting down: ${why}`);
    tell({ smmapd: 'shutdown' });
    setTimeout(() => shell.exit(exitCode), cfg.shutdownTimeoutMs + SHUTDOWN_GRACE_MS).unref();
    if (workers.size === 0) shell.exit(exitCode);
  };
  const life = new Lifecycle(limits, () => tell({ smmapd: 'stop-accepting' }), (why) => exitAll(why));
  let secured = false;
  let announced = false;
  // A worker takes SIGHUP only once it says it is ready: before its handler is installed the
  // signal would kill it. One that is still starting gets the reload when it is ready.
  const ready = new Set<Worker>();
  const reloadWhenReady = new Set<Worker>();
  const budget = new RestartBudget();

  const onReady = (w: Worker): void => {
    ready.add(w);
    if (failedForks > 0 && workers.size >= want) log.notice(`running with ${want} workers again`);
    if (workers.size >= want) failedForks = 0;
    // Told to stop while it was starting (its message handler was not there yet): tell it again.
    if (stopping) return void w.send({ smmapd: 'shutdown' } satisfies PrimaryMsg);
    if (reloadWhenReady.delete(w)) w.process.kill('SIGHUP');
    // a replacement forked after -U was reached must not take new connections
    if (!life.accepting) w.send({ smmapd: 'stop-accepting' } satisfies PrimaryMsg);
    if (!secured) {
      secured = true; // the socket files exist once one worker listens
      for (const f of files) if (!f.secure(cfg, log)) return exitAll(`cannot set the mode and owner of ${f.path}`, EX_TEMPFAIL);
    }
    if (!announced && ready.size >= want) {
      announced = true;
      log.notice(`listening on ${describeSpecs(specs)} with ${want} workers`);
    }
  };

  /** Forks that failed in a row (out of descriptors or processes): the retry delay doubles with each. */
  let failedForks = 0;
  let topUpTimer: NodeJS.Timeout | null = null;
  /** In `delay` ms, fork as many workers as are missing (one timer at a time). */
  const topUp = (delay: number): void => {
    if (topUpTimer !== null || stopping) return;
    topUpTimer = setTimeout(() => {
      topUpTimer = null;
      for (let n = workers.size; n < want && !stopping; n++) fork();
    }, delay);
  };
  /** A fork that did not start a process: say so at warning, and try again later. */
  const forkFailed = (e: Error): void => {
    failedForks++;
    const delay = backoffDelay(failedForks, RESTART_DELAY_MIN_MS, RESTART_DELAY_MAX_MS);
    log.warning(`cannot start a worker (${(e as NodeJS.ErrnoException).code ?? e.message}): running with ${workers.size} of ${want} workers; trying again in ${delay} ms`);
    topUp(delay);
  };

  /** A worker died unasked: start another after a delay that grows with recent deaths; give up past the limit. */
  const restart = (w: Worker, code: number | null, signal: string | null): void => {
    const delay = budget.died(Date.now());
    if (delay === null) {
      log.error(`workers keep dying (${budget.recent} in ${CRASH_WINDOW_MS / 1000} s, the last ${signal ?? code}): giving up`);
      return exitAll('workers keep dying', EX_TEMPFAIL);
    }
    log.error(`worker ${w.process.pid} exited (${signal ?? code}); starting another in ${delay} ms`);
    topUp(delay);
  };

  const fork = (): void => {
    let w: Worker;
    try {
      // the addresses this daemon serves, not what the file may say by the time a worker is replaced
      w = cluster.fork({ SMMAPD_WORKER_LISTEN: JSON.stringify(specs) });
    } catch (e) {
      return forkFailed(e as Error);
    }
    workers.add(w);
    let gone = false;
    // A message to a worker that just died fails on its channel: not a reason to die too.
    // A spawn that failed (EMFILE, EAGAIN) reports here, and no 'exit' follows.
    w.on('error', (e: Error) => {
      if (w.process.pid !== undefined || gone) return log.debug(`worker ${w.process.pid}: ${e.message}`);
      gone = true;
      workers.delete(w);
      if (cluster.workers !== undefined) delete cluster.workers[w.id];
      if (!stopping) forkFailed(e);
      else if (workers.size === 0) shell.exit(exitCode);
    });
    // Connections this worker reported open: if it dies they are gone, and -U/-T must know.
    let open = 0;
    w.on('message', (m: WorkerMsg & Record<string, unknown>) => {
      switch (kindOf(m)) {
        case 'opened':
          open++;
          return life.opened();
        case 'closed':
          open--;
          return life.closed();
        case 'ready':
          return onReady(w);
        case 'bind-failed':
          // One line, then the end: every worker would fail the same way.
          if (!stopping) log.error(String(m.message));
          return exitAll('a listen address cannot be bound', EX_TEMPFAIL);
      }
    });
    w.on('exit', (code, signal) => {
      if (gone) return;
      gone = true;
      workers.delete(w);
      // node:cluster closes a listening socket when its last worker is gone (a unix socket
      // file with it); the next worker binds anew, and that socket needs its mode and owner.
      if (workers.size === 0) {
        secured = false;
        files = socketFiles();
      }
      ready.delete(w);
      reloadWhenReady.delete(w);
      for (; open > 0; open--) life.closed();
      if (stopping) {
        if (workers.size === 0) shell.exit(exitCode);
        return;
      }
      restart(w, code, signal);
    });
  };
  for (let i = 0; i < want; i++) fork();
  shell.on(['SIGTERM', 'SIGINT'], (sig) => exitAll(sig));
  // SIGUSR2: the primary has reopened its log file; each worker reopens its own (one still
  // starting opens the file anew anyway, and must not get a signal before its handler exists).
  shell.onReopenLog(() => {
    for (const w of workers) if (ready.has(w)) w.process.kill('SIGUSR2');
  });
  shell.on(['SIGHUP'], () => {
    for (const w of workers) {
      if (ready.has(w)) w.process.kill('SIGHUP');
      else reloadWhenReady.add(w);
    }
    // The workers reload for themselves; the primary owns the unix sockets' mode and owner.
    try {
      const next = loadConfig(cfg.path === '' ? undefined : cfg.path);
      log.configure({ threshold: next.logLevel, audit: next.audit, auditLevel: next.auditLevel });
      log.reopen();
      if (socketSettingsChanged(cfg, next)) for (const f of files) f.secure(next, log);
      // said once, here: the workers reload the rest for themselves
      logRestartOnly(started, next, log);
      cfg = next;
      opts.reloaded?.(next);
    } catch (e) {
      log.error(`reload failed in the primary: ${(e as Error).message}`);
    }
  });
}
