// The process shell: the one place where a smmapd process ends, whatever its model (listener
// primary and workers, Cyrus master, systemd, inetd/stdio). It owns the signal handlers, the
// drain bound, closing the store and the log, and the exit code. Models tell it what to do
// (drain, exit, fail); only this file calls process.exit(). Kept free of imports so that the
// stdio model, which pays start-up on every connection, loads nothing more for it.
import type { Logger } from '../log';
import { EX_OK } from './exit-codes';

/** How long closing the store and the log may take before the process exits anyway. */
export const CLOSE_BOUND_MS = 2000;
/** How often a drain looks whether the last connection is over. */
const DRAIN_POLL_MS = 20;

/** What the shell closes and drains: a Service, seen from outside. */
export interface ShellService {
  readonly sessions: { readonly size: number };
  drainAll(): void;
  close(): Promise<void>;
}

export type Signal = 'SIGTERM' | 'SIGINT' | 'SIGQUIT' | 'SIGHUP';

export class ProcessShell {
  private log: Logger | null = null;
  private service: ShellService | null = null;
  private state: 'running' | 'draining' | 'exiting' = 'running';
  private readonly exitHooks: Array<() => void> = [];
  /** What SIGUSR1 runs: whatever SIGHUP runs (sockmapd reloads on SIGUSR1). */
  private readonly reloadHandlers: Array<() => void> = [];
  /** What SIGUSR2 runs after the log has reopened its file (the primary tells its workers). */
  private readonly reopenHandlers: Array<() => void> = [];

  /**
   * `fallback` says a fatal message when no logger exists yet (bad configuration).
   * SIGUSR1 and SIGUSR2 get handlers at once, in every process: without one, SIGUSR1 opens
   * Node's inspector on 127.0.0.1:9229 (a debugger for any local user, in a root process)
   * and SIGUSR2 ends the process. SIGUSR1: reload, as SIGHUP; SIGUSR2: reopen the log file.
   */
  constructor(private readonly fallback: (msg: string) => void) {
    process.on('SIGUSR1', () => {
      this.log?.debug('SIGUSR1: reloading, as for SIGHUP');
      for (const h of this.reloadHandlers) h();
    });
    process.on('SIGUSR2', () => this.reopenLog());
  }

  /** SIGUSR2 (logrotate's postrotate): the log file is opened anew, then the handlers run. */
  reopenLog(): void {
    this.log?.reopen();
    for (const h of this.reopenHandlers) h();
  }

  /** Run on SIGUSR2 once this process's log file is reopened. */
  onReopenLog(handler: () => void): void {
    this.reopenHandlers.push(handler);
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

  /** A SIGHUP handler serves SIGUSR1 as well. */
  on(signals: readonly Signal[], handler: (sig: Signal) => void): void {
    for (const sig of signals) process.on(sig, () => handler(sig));
    if (signals.includes('SIGHUP')) this.reloadHandlers.push(() => handler('SIGHUP'));
  }

  /** Survive these signals (a cluster worker: the primary owns SIGTERM/SIGINT for the group). */
  ignore(signals: readonly Signal[]): void {
    for (const sig of signals) process.on(sig, () => undefined);
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
    const check = (): void => {
      if ((service?.sessions.size ?? 0) === 0) this.exit(EX_OK);
      else setTimeout(check, DRAIN_POLL_MS).unref();
    };
    check();
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
