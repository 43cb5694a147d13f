// The process shell: the one place where a smmapd process's life is wired, whatever its model
// (listener, cluster primary and workers, Cyrus master, systemd, inetd/stdio). It owns the
// signal handlers (each model hands it what stopping and reloading mean, once: control()),
// the drain bound, closing the store and the log, and the exit code; only this file calls
// process.exit(). It imports only types and exit codes, so that the stdio model, which pays
// start-up on every connection, loads nothing more for it.
import type { Logger } from '../log';
import { EX_OK } from './exit-codes';

/** How long closing the store and the log may take before the process exits anyway. */
export const CLOSE_BOUND_MS = 2000;

/** What the shell closes and drains: a Service, seen from outside. */
export interface ShellService {
  readonly sessions: { readonly size: number };
  drainAll(): void;
  /** Resolves once no session is open (at once when none is). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export type Signal = 'SIGTERM' | 'SIGINT' | 'SIGQUIT' | 'SIGHUP';

/** What a process model tells the shell; the shell wires the signals to it. */
export interface ProcessControls {
  /**
   * SIGTERM and SIGINT (and SIGQUIT with `quit`): end the process. 'ignore': survive them
   * (a cluster worker: the primary owns them for the group and tells it when to go).
   */
  readonly stop: ((sig: Signal) => void) | 'ignore';
  /** SIGQUIT stops as well (Cyrus master's shutdown signal); elsewhere it keeps Node's default. */
  readonly quit?: boolean;
  /** SIGHUP, and SIGUSR1 (sockmapd reloads on SIGUSR1). */
  readonly reload: () => void;
  /** SIGUSR2, once this process's log file is reopened (the primary tells its workers). */
  readonly reopenLog?: () => void;
}

export class ProcessShell {
  private log: Logger | null = null;
  private service: ShellService | null = null;
  private state: 'running' | 'draining' | 'exiting' = 'running';
  private readonly exitHooks: Array<() => void> = [];
  /** What the process model said (control()); null until then. */
  private controls: ProcessControls | null = null;

  /**
   * `fallback` says a fatal message when no logger exists yet (bad configuration).
   * SIGUSR1 and SIGUSR2 get handlers at once, in every process: without one, SIGUSR1 opens
   * Node's inspector on 127.0.0.1:9229 (a debugger for any local user, in a root process)
   * and SIGUSR2 ends the process. SIGUSR1: reload, as SIGHUP; SIGUSR2: reopen the log file.
   * The others wait for control(): until a model can reload, SIGHUP ends the process.
   */
  constructor(private readonly fallback: (msg: string) => void) {
    process.on('SIGUSR1', () => {
      this.log?.debug('SIGUSR1: reloading, as for SIGHUP');
      this.controls?.reload();
    });
    process.on('SIGUSR2', () => this.reopenLog());
  }

  /** SIGUSR2 (logrotate's postrotate): the log file is opened anew, then the model hears of it. */
  reopenLog(): void {
    this.log?.reopen();
    this.controls?.reopenLog?.();
  }

  /**
   * The process model is ready to be stopped and reloaded: the signals reach it from now on.
   * Once per process (a second model in one process would be a bug).
   */
  control(controls: ProcessControls): void {
    if (this.controls !== null) throw new Error('the process shell is already controlled by a model');
    this.controls = controls;
    const { stop } = controls;
    const stops: Signal[] = controls.quit === true ? ['SIGTERM', 'SIGINT', 'SIGQUIT'] : ['SIGTERM', 'SIGINT'];
    for (const sig of stops) process.on(sig, stop === 'ignore' ? () => undefined : () => stop(sig));
    process.on('SIGHUP', () => controls.reload());
  }

  /** Lines from now on go to this logger; it is closed (flushed) before exit. */
  useLogger(log: Logger): void {
    this.log = log;
  }

  /** The service this process serves: drained on shutdown, closed before exit. */
  useService(service: ShellService): void {
    this.service = service;
  }

  /** Neither draining nor exiting. */
  get running(): boolean {
    return this.state === 'running';
  }

  /** Run before the process exits, however it exits (Cyrus master: say UNAVAILABLE first). */
  onExit(hook: () => void): void {
    this.exitHooks.push(hook);
  }

  /** Close the store (unless told not to) and the log, bounded, then exit with `code`. */
  exit(code: number, opts: { why?: string; closeService?: boolean } = {}): void {
    if (this.state === 'exiting') return;
    this.state = 'exiting';
    if (opts.why !== undefined) this.log?.debug(`exiting: ${opts.why}`);
    this.runExitHooks();
    const done = (): never => process.exit(code);
    setTimeout(done, CLOSE_BOUND_MS).unref();
    const closing = [this.log?.close()];
    if (opts.closeService !== false) closing.push(this.service?.close());
    void Promise.allSettled(closing).then(done);
  }

  /**
   * Log and exit now (start-up failed, fatal error). Lines reach the syslog child before
   * process.exit(): libuv writes to an idle pipe at once, and the detached child reads to
   * EOF after we are gone.
   */
  fatal(msg: string, code: number): never {
    if (this.log !== null) this.log.error(msg);
    else this.fallback(msg);
    this.state = 'exiting';
    this.runExitHooks();
    process.exit(code);
  }

  /**
   * Shutdown of a serving process: stop taking connections, let every session answer what
   * has arrived and close, exit 0 once none is left, or after `boundMs` regardless.
   * `announce`: a notice line says so (a listener); a per-connection process stays quiet.
   */
  drain(why: string, stopAccepting: () => void, boundMs: number, announce = true): void {
    if (this.state !== 'running') return;
    this.state = 'draining';
    const service = this.service;
    if (announce) this.log?.notice(`shutting down: ${why}`);
    else this.log?.debug(`shutting down: ${why}`);
    stopAccepting();
    service?.drainAll();
    const force = setTimeout(() => {
      this.log?.warning(`${service?.sessions.size ?? 0} connection(s) still open after ${boundMs} ms; closing them`);
      this.exit(EX_OK, { closeService: false });
    }, boundMs);
    force.unref();
    // the last session to end resolves this; the bound above comes first otherwise
    void (service?.idle() ?? Promise.resolve()).then(() => {
      clearTimeout(force);
      this.exit(EX_OK);
    });
  }

  private runExitHooks(): void {
    for (const hook of this.exitHooks.splice(0)) {
      try {
        hook();
      } catch {
        // an exit hook must not stop the exit
      }
    }
  }
}
