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
import { describeSpecs, type ListenSpec } from '../listen-spec';
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
  for (const s of specs) if (s.kind === 'unix') await clearStaleSocket(s.path);
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ silent: false });
  if (isRoot() && cfg.runUser === '') log.warning('running as root: set smmapd_user (and smmapd_group) to run the workers as an unprivileged user');
  new Primary(specs, cfg, log, limits, shell, opts).start();
}

/** The primary's state: its workers, what they were told, and when to replace them. */
class Primary {
  /** What the daemon started with: a reload cannot change these (restartOnlyChanges). */
  private readonly started: Config;
  /** The configured count of workers: what the primary keeps trying to reach. */
  private readonly want: number;
  private readonly workers = new Set<Worker>();
  // A worker takes SIGHUP only once it says it is ready: before its handler is installed the
  // signal would kill it. One that is still starting gets the reload when it is ready.
  private readonly ready = new Set<Worker>();
  private readonly reloadWhenReady = new Set<Worker>();
  private readonly budget = new RestartBudget();
  private readonly life: Lifecycle;
  private files: UnixSocketFile[];
  private stopping = false;
  private exitCode = EX_OK;
  /** The socket files have their mode and owner (they exist once one worker listens). */
  private secured = false;
  private announced = false;
  /** Forks that failed in a row (out of descriptors or processes): the retry delay doubles with each. */
  private failedForks = 0;
  private topUpTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly specs: ListenSpec[],
    private cfg: Config,
    private readonly log: Logger,
    limits: LifecycleLimits,
    private readonly shell: ProcessShell,
    private readonly opts: PrimaryOptions,
  ) {
    this.started = cfg;
    this.want = cfg.workers;
    this.files = this.socketFiles();
    this.life = new Lifecycle(limits, () => this.tell({ smmapd: 'stop-accepting' }), (why) => this.stop(why));
  }

  start(): void {
    for (let i = 0; i < this.want; i++) this.fork();
    this.shell.control({
      stop: (sig) => this.stop(sig),
      reload: () => this.reload(),
      // the primary has reopened its log file; each ready worker reopens its own (one still
      // starting opens the file anew anyway, and must not get a signal before its handler exists)
      reopenLog: () => this.signalReady('SIGUSR2'),
    });
  }

  private socketFiles(): UnixSocketFile[] {
    return this.specs.flatMap((s) => (s.kind === 'unix' ? [new UnixSocketFile(s.path)] : []));
  }

  private tell(m: PrimaryMsg): void {
    for (const w of this.workers) if (w.isConnected()) w.send(m);
  }

  private signalReady(sig: 'SIGHUP' | 'SIGUSR2'): void {
    for (const w of this.workers) if (this.ready.has(w)) w.process.kill(sig);
  }

  /** Shutdown: the workers drain; the primary exits when the last is gone, or after their bound. */
  private stop(why: string, code = EX_OK): void {
    if (this.stopping) return;
    this.stopping = true;
    this.exitCode = code;
    if (code === EX_OK) this.log.notice(`shutting down: ${why}`);
    this.tell({ smmapd: 'shutdown' });
    setTimeout(() => this.shell.exit(this.exitCode), this.cfg.shutdownTimeoutMs + SHUTDOWN_GRACE_MS).unref();
    this.exitIfNoneLeft();
  }

  private exitIfNoneLeft(): void {
    if (this.workers.size === 0) this.shell.exit(this.exitCode);
  }

  private fork(): void {
    let w: Worker;
    try {
      // the addresses this daemon serves, not what the file may say by the time a worker is replaced
      w = cluster.fork({ SMMAPD_WORKER_LISTEN: JSON.stringify(this.specs) });
    } catch (e) {
      return this.forkFailed(e as Error);
    }
    this.workers.add(w);
    this.watch(w);
  }

  /** Listen to one worker: its messages, a spawn that failed, its exit. */
  private watch(w: Worker): void {
    let gone = false;
    // A message to a worker that just died fails on its channel: not a reason to die too.
    // A spawn that failed (EMFILE, EAGAIN) reports here, and no 'exit' follows.
    w.on('error', (e: Error) => {
      if (w.process.pid !== undefined || gone) return this.log.debug(`worker ${w.process.pid}: ${e.message}`);
      gone = true;
      this.workers.delete(w);
      if (cluster.workers !== undefined) delete cluster.workers[w.id];
      if (!this.stopping) this.forkFailed(e);
      else this.exitIfNoneLeft();
    });
    // Connections this worker reported open: if it dies they are gone, and -U/-T must know.
    let open = 0;
    w.on('message', (m: WorkerMsg & Record<string, unknown>) => {
      const kind = kindOf(m);
      if (kind === 'opened') open++;
      else if (kind === 'closed') open--;
      this.heard(w, kind, m);
    });
    w.on('exit', (code, signal) => {
      if (gone) return;
      gone = true;
      this.exited(w, open, code, signal);
    });
  }

  /** A message from a worker (other kinds belong to other features: metrics-http.ts). */
  private heard(w: Worker, kind: string | null, m: Record<string, unknown>): void {
    switch (kind) {
      case 'opened':
        return this.life.opened();
      case 'closed':
        return this.life.closed();
      case 'ready':
        return this.onReady(w);
      case 'bind-failed':
        // One line, then the end: every worker would fail the same way.
        if (!this.stopping) this.log.error(String(m.message));
        return this.stop('a listen address cannot be bound', EX_TEMPFAIL);
    }
  }

  private onReady(w: Worker): void {
    this.ready.add(w);
    if (this.failedForks > 0 && this.workers.size >= this.want) this.log.notice(`running with ${this.want} workers again`);
    if (this.workers.size >= this.want) this.failedForks = 0;
    // Told to stop while it was starting (its message handler was not there yet): tell it again.
    if (this.stopping) return void w.send({ smmapd: 'shutdown' } satisfies PrimaryMsg);
    if (this.reloadWhenReady.delete(w)) w.process.kill('SIGHUP');
    // a replacement forked after -U was reached must not take new connections
    if (!this.life.accepting) w.send({ smmapd: 'stop-accepting' } satisfies PrimaryMsg);
    if (!this.secured) {
      this.secured = true; // the socket files exist once one worker listens
      for (const f of this.files) if (!f.secure(this.cfg, this.log)) return this.stop(`cannot set the mode and owner of ${f.path}`, EX_TEMPFAIL);
    }
    if (!this.announced && this.ready.size >= this.want) {
      this.announced = true;
      this.log.notice(`listening on ${describeSpecs(this.specs)} with ${this.want} workers`);
    }
  }

  /** A worker's process ended, with `open` connections it had reported. */
  private exited(w: Worker, open: number, code: number | null, signal: string | null): void {
    this.workers.delete(w);
    // node:cluster closes a listening socket when its last worker is gone (a unix socket
    // file with it); the next worker binds anew, and that socket needs its mode and owner.
    if (this.workers.size === 0) {
      this.secured = false;
      this.files = this.socketFiles();
    }
    this.ready.delete(w);
    this.reloadWhenReady.delete(w);
    for (; open > 0; open--) this.life.closed();
    if (this.stopping) return this.exitIfNoneLeft();
    this.restart(w, code, signal);
  }

  /** A worker died unasked: start another after a delay that grows with recent deaths; give up past the limit. */
  private restart(w: Worker, code: number | null, signal: string | null): void {
    const delay = this.budget.died(Date.now());
    if (delay === null) {
      this.log.error(`workers keep dying (${this.budget.recent} in ${CRASH_WINDOW_MS / 1000} s, the last ${signal ?? code}): giving up`);
      return this.stop('workers keep dying', EX_TEMPFAIL);
    }
    this.log.error(`worker ${w.process.pid} exited (${signal ?? code}); starting another in ${delay} ms`);
    this.topUp(delay);
  }

  /** A fork that did not start a process: say so at warning, and try again later. */
  private forkFailed(e: Error): void {
    this.failedForks++;
    const delay = backoffDelay(this.failedForks, RESTART_DELAY_MIN_MS, RESTART_DELAY_MAX_MS);
    this.log.warning(`cannot start a worker (${(e as NodeJS.ErrnoException).code ?? e.message}): running with ${this.workers.size} of ${this.want} workers; trying again in ${delay} ms`);
    this.topUp(delay);
  }

  /** In `delay` ms, fork as many workers as are missing (one timer at a time). */
  private topUp(delay: number): void {
    if (this.topUpTimer !== null || this.stopping) return;
    this.topUpTimer = setTimeout(() => {
      this.topUpTimer = null;
      for (let n = this.workers.size; n < this.want && !this.stopping; n++) this.fork();
    }, delay);
  }

  /** SIGHUP: the workers reload for themselves; the primary owns the log and the unix sockets' mode and owner. */
  private reload(): void {
    for (const w of this.workers) if (!this.ready.has(w)) this.reloadWhenReady.add(w);
    this.signalReady('SIGHUP');
    try {
      const next = loadConfig(this.cfg.path === '' ? undefined : this.cfg.path);
      this.log.configure({ threshold: next.logLevel, audit: next.audit, auditLevel: next.auditLevel });
      this.log.reopen();
      if (socketSettingsChanged(this.cfg, next)) for (const f of this.files) f.secure(next, this.log);
      // said once, here: the workers reload the rest for themselves
      logRestartOnly(this.started, next, this.log);
      this.cfg = next;
      this.opts.reloaded?.(next);
    } catch (e) {
      this.log.error(`reload failed in the primary: ${(e as Error).message}`);
    }
  }
}
