// A pool of admin sessions to the IMAP server, shared by the live store and `smmapctl sync`.
// One command at a time per session (imapflow does not pipeline), so parallelism comes from the
// pool. Every job runs against a deadline: when it passes, the job fails with StoreError and its
// session is dropped, since a late answer would arrive out of turn. A failure to connect or a
// deadline missed marks the server down: jobs then fail at once (no waiting out the deadline on
// every lookup) while one background probe reconnects with exponential backoff, and the pool
// serves again as soon as a probe logs in. Against a Cyrus Murder frontend a job can name the
// backend it needs (imap-backends.ts): its deadline missed or "Server(s) unavailable" then marks
// that backend down, not the server, and bounds how many sessions one backend may hold.
import { readFileSync } from 'node:fs';
import type { ImapConfig } from '../config';
import { StoreError } from './store';
import type { StoreLog } from '../core/contract';
import { BackendGates, BackendUnavailable } from './imap-backends';
import { ImapCommandError, isBackendUnavailable, openSession, type ImapSession } from './imap-client';
import { backoffDelay } from '../backoff';
import { Deadline, within } from '../deadline';
import { WaitQueue } from '../pool';

export interface PoolOptions {
  readonly imap: ImapConfig;
  readonly size: number;
  /** Per-job deadline, ms. */
  readonly timeoutMs: number;
  readonly log: StoreLog;
  /** First and largest pause between reconnect attempts, ms. */
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
  /** The caller reports the server's refusals itself (sync names the mailbox): do not log them. */
  readonly quietRefusals?: boolean;
  /** Sessions one Murder backend's jobs may hold at once (default: half the pool, at least 1). */
  readonly backendLimit?: number;
}

/** Sessions one backend may hold by default: half the pool, so a hung one leaves the rest to the others. */
export function defaultBackendLimit(size: number): number {
  return Math.max(1, Math.floor(size / 2));
}

/** Past the deadline: the job fails, its session is dropped (a late answer would arrive out of turn). */
function late(what: string): () => StoreError {
  return () => new StoreError(`IMAP server did not answer within the deadline (${what})`, { reply: 'IMAP server timed out' });
}

/** Lets a long job say it is still receiving: the deadline then counts from now again. */
export type Touch = () => void;

function describe(e: unknown): string {
  return e instanceof Error ? e.message || e.name : String(e);
}

export class ImapPool {
  private readonly idle: ImapSession[] = [];
  private readonly waiters = new WaitQueue<ImapSession>();
  private total = 0;
  private down: { reason: string; failures: number } | null = null;
  private probe: NodeJS.Timeout | null = null;
  private probing = false;
  private closed = false;
  /** The last refusal logged: a broken mailbox asked again and again is logged once. */
  private lastRefusal = '';
  private readonly ca: Buffer | undefined;
  readonly backends: BackendGates;

  constructor(private readonly o: PoolOptions) {
    this.ca = o.imap.caFile !== '' ? readFileSync(o.imap.caFile) : undefined;
    this.backends = new BackendGates({
      limit: o.backendLimit ?? defaultBackendLimit(o.size), log: o.log, backoffMinMs: o.backoffMinMs, backoffMaxMs: o.backoffMaxMs,
    });
  }

  get size(): number {
    return this.o.size;
  }

  /**
   * Run `job` on one session within the deadline. A tagged NO/BAD the job lets through becomes a
   * StoreError and the session stays; anything else (deadline, broken connection) drops it.
   * `backend` (a Murder backend's name, '' for none): the job needs that backend; it waits for
   * one of the backend's slots, fails at once with BackendUnavailable while the backend is down,
   * and its failures mark the backend down instead of the server.
   */
  async run<T>(job: (s: ImapSession, touch: Touch) => Promise<T>, timeoutMs = this.o.timeoutMs, backend = ''): Promise<T> {
    const d = Deadline.in(timeoutMs);
    if (backend === '') return this.attempt(job, d, timeoutMs, '');
    let leave: () => void;
    try {
      leave = await this.backends.enter(backend, d.left);
    } catch (e) {
      // Its slots stayed taken for a whole deadline: as good as a deadline missed.
      if (!(e instanceof BackendUnavailable && e.state === 'busy')) throw e;
      this.backends.markDown(backend, 'no answer within the deadline', () => this.probeBackend(job, timeoutMs, backend));
      throw new BackendUnavailable(backend, 'no answer within the deadline');
    }
    try {
      return await this.attempt(job, d, timeoutMs, backend);
    } finally {
      leave();
    }
  }

  private async attempt<T>(job: (s: ImapSession, touch: Touch) => Promise<T>, d: Deadline, timeoutMs: number, backend: string): Promise<T> {
    const touch: Touch = () => d.extend(timeoutMs);
    const probe = (): Promise<unknown> => this.probeBackend(job, timeoutMs, backend);
    const backendDown = (reason: string): BackendUnavailable => {
      this.backends.markDown(backend, reason, probe);
      return new BackendUnavailable(backend, reason);
    };
    for (let attempt = 0; ; attempt++) {
      const s = await this.acquire(d);
      let expired = false;
      try {
        const v = await within(job(s, touch), d, late('command'), () => {
          expired = true;
          // A frontend session whose command waits on a hung backend is stuck with it: drop it,
          // and open its successor now, so that other backends' lookups find it logged in.
          if (backend === '') this.markDown('no answer within the deadline');
          s.destroy();
          if (backend !== '') this.refill();
        });
        this.release(s);
        return v;
      } catch (e) {
        if (expired && backend !== '') throw backendDown('no answer within the deadline');
        if (e instanceof ImapCommandError && backend !== '' && isBackendUnavailable(e)) {
          this.release(s);
          throw backendDown(e.message);
        }
        if (e instanceof ImapCommandError) {
          this.release(s);
          // The reply says only "IMAP server refused": the log has what it said.
          if (!this.o.quietRefusals && e.message !== this.lastRefusal) this.o.log(`IMAP server refused: ${(this.lastRefusal = e.message)}`);
          throw new StoreError(`IMAP server refused: ${e.message}`, { cause: e, reply: 'IMAP server refused' });
        }
        s.destroy();
        if (expired) throw e;
        // A session that broke while idle (server restarted): one retry on a fresh one.
        if (attempt === 0 && d.left > 0 && !this.down) continue;
        this.markDown(describe(e));
        throw e instanceof StoreError ? e : new StoreError(`IMAP connection failed: ${describe(e)}`, { cause: e, reply: 'IMAP server unavailable' });
      }
    }
  }

  /**
   * A backend's probe: the job that failed, run again on a session of its own (a pooled one
   * would be stuck with the backend again, away from the other backends' lookups); it resolves
   * on any answer, a refusal too, and rejects with BackendUnavailable while the backend fails.
   */
  private async probeBackend<T>(job: (s: ImapSession, touch: Touch) => Promise<T>, timeoutMs: number, backend: string): Promise<void> {
    if (this.closed) throw new BackendUnavailable(backend, 'closed');
    const d = Deadline.in(timeoutMs);
    const s = await this.open(d);
    try {
      await within(job(s, () => d.extend(timeoutMs)), d, late('probe'), () => s.destroy());
    } catch (e) {
      if (e instanceof ImapCommandError && !isBackendUnavailable(e)) return;
      throw new BackendUnavailable(backend, e instanceof ImapCommandError ? e.message : 'no answer within the deadline');
    } finally {
      s.destroy();
    }
  }

  private unavailable(): StoreError {
    return new StoreError(`IMAP server unavailable: ${this.down?.reason ?? 'closed'}`, { reply: 'IMAP server unavailable' });
  }

  private async acquire(d: Deadline): Promise<ImapSession> {
    if (this.closed || this.down) throw this.unavailable();
    for (let s = this.idle.pop(); s; s = this.idle.pop()) {
      if (s.usable) return s;
      s.destroy();
    }
    if (this.total < this.o.size) return this.connect(d);
    // Waiting for a busy pool is not the server's fault: no markDown here.
    return this.waiters.wait(d, () => new StoreError('IMAP pool busy: no session free within the deadline', { reply: 'IMAP server busy' }));
  }

  /** Open a counted session; a failure marks the server down. A login never gets more than the lookup deadline. */
  private async connect(d: Deadline): Promise<ImapSession> {
    this.total++;
    let s: ImapSession;
    try {
      s = await this.open(d.left > this.o.timeoutMs ? Deadline.in(this.o.timeoutMs) : d);
    } catch (e) {
      this.total--;
      this.markDown(describe(e));
      throw e instanceof StoreError ? e : new StoreError(`IMAP connection failed: ${describe(e)}`, { cause: e, reply: 'IMAP server unavailable' });
    }
    s.onClose(() => this.forget(s));
    return s;
  }

  private async open(d: Deadline): Promise<ImapSession> {
    const ac = new AbortController();
    // While the server is known down every session reports its end: say it once (markDown).
    const onError = (e: Error): void => { if (!this.down && !this.closed) this.o.log(`IMAP connection error: ${describe(e)}`); };
    const p = openSession(this.o.imap, this.ca, Math.max(1, d.left), onError, ac.signal);
    p.catch(() => undefined); // settled after an abort too; nobody else awaits it then
    return within(p, d, late('login'), () => ac.abort());
  }

  private forget(s: ImapSession): void {
    this.total--;
    const i = this.idle.indexOf(s);
    if (i >= 0) this.idle.splice(i, 1);
    // A slot opened up: a waiter may connect now.
    const w = this.down || this.closed ? undefined : this.waiters.take();
    if (w) {
      this.connect(Deadline.in(this.o.timeoutMs)).then((s) => { if (!w.give(s)) this.release(s); }, (e: Error) => w.fail(e));
    }
  }

  /** One more idle session in the background, while the pool has room and the server is up. */
  private refill(): void {
    if (this.closed || this.down || this.total >= this.o.size) return;
    this.connect(Deadline.in(this.o.timeoutMs)).then((s) => this.release(s), () => undefined);
  }

  private release(s: ImapSession): void {
    if (!s.usable || this.closed) {
      s.destroy();
      return;
    }
    if (!this.waiters.give(s)) this.idle.push(s);
  }

  private backoff(failures: number): number {
    return backoffDelay(failures, this.o.backoffMinMs ?? 250, this.o.backoffMaxMs ?? 5000);
  }

  private markDown(reason: string): void {
    if (this.closed) return;
    if (this.down) return; // one outage, one backoff schedule: only probes count failures
    this.down = { reason, failures: 1 };
    this.o.log(`IMAP server ${this.o.imap.host}:${this.o.imap.port} unavailable: ${reason}`);
    this.waiters.failAll(() => this.unavailable());
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.probe || this.probing || !this.down || this.closed) return;
    this.probe = setTimeout(() => void this.runProbe(), this.backoff(this.down.failures));
    this.probe.unref();
  }

  private async runProbe(): Promise<void> {
    this.probe = null;
    if (!this.down || this.closed || this.probing) return;
    this.total++;
    this.probing = true;
    let s: ImapSession;
    try {
      s = await this.open(Deadline.in(this.o.timeoutMs));
    } catch (e) {
      this.total--;
      this.probing = false;
      if (this.down) {
        this.down = { reason: describe(e), failures: this.down.failures + 1 };
        this.scheduleProbe();
      }
      return;
    }
    this.probing = false;
    s.onClose(() => this.forget(s));
    if (this.closed) {
      s.destroy();
      return;
    }
    this.o.log(`IMAP server ${this.o.imap.host}:${this.o.imap.port} reachable again`, 'notice');
    this.down = null;
    this.release(s);
  }

  /** Log out every idle session and refuse further jobs. */
  async close(): Promise<void> {
    this.closed = true;
    this.backends.close();
    if (this.probe) clearTimeout(this.probe);
    this.probe = null;
    this.waiters.failAll(() => this.unavailable());
    await Promise.all(this.idle.splice(0).map((s) => s.logout(1000)));
  }
}
