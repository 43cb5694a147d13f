// Per-backend isolation for a Cyrus Murder: every session goes to the frontend, which proxies
// quota commands to the backend holding the mailbox. One hung backend must not take the whole
// pool: each backend's jobs may hold at most `limit` sessions at once, and a backend that
// missed a deadline or that the frontend cannot reach ("Server(s) unavailable") is marked down
// by itself: its jobs then fail at once with BackendUnavailable while one background probe (the
// job that failed, run again with backoff on a session of its own) waits for it to answer.
// Other backends go on.
import { StoreError } from './store';
import type { StoreLog } from '../core/contract';
import { backoffDelay } from '../backoff';

/**
 * A job for a backend that is down (or went down), or whose slots stayed taken past the
 * deadline (`busy`): the reply names the backend. Only the backend's answers are missing.
 */
export class BackendUnavailable extends StoreError {
  constructor(readonly backend: string, reason: string, readonly state: 'unavailable' | 'busy' = 'unavailable') {
    super(`IMAP backend ${backend} ${state}: ${reason}`, { reply: `IMAP backend ${backend} ${state}` });
    this.name = 'BackendUnavailable';
  }
}

interface Gate {
  held: number;
  readonly waiters: Array<{ enter: () => void; fail: (e: Error) => void }>;
  down: { reason: string; failures: number } | null;
  timer: NodeJS.Timeout | null;
  probing: boolean;
}

export interface GateOptions {
  /** Sessions one backend's jobs may hold at once. */
  readonly limit: number;
  readonly log: StoreLog;
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
}

/** Resolves when the probe's job got an answer from the backend; rejects (BackendUnavailable) when not. */
export type Probe = () => Promise<unknown>;

export class BackendGates {
  private readonly gates = new Map<string, Gate>();
  private closed = false;

  constructor(private readonly o: GateOptions) {}

  private gate(b: string): Gate {
    let g = this.gates.get(b);
    if (!g) this.gates.set(b, (g = { held: 0, waiters: [], down: null, timer: null, probing: false }));
    return g;
  }

  isDown(b: string): boolean {
    return this.gates.get(b)?.down != null;
  }

  /** Backends marked down now, with why. */
  downList(): Array<{ backend: string; reason: string }> {
    return [...this.gates].filter(([, g]) => g.down).map(([backend, g]) => ({ backend, reason: g.down!.reason }));
  }

  /**
   * A slot for one job of backend `b`, within `waitMs`; the returned function gives it back.
   * Throws BackendUnavailable while `b` is down.
   */
  async enter(b: string, waitMs: number): Promise<() => void> {
    const g = this.gate(b);
    if (g.down) throw new BackendUnavailable(b, g.down.reason);
    if (g.held >= this.o.limit) {
      await new Promise<void>((resolve, reject) => {
        const w = {
          enter: () => { clearTimeout(timer); resolve(); },
          fail: (e: Error) => { clearTimeout(timer); reject(e); },
        };
        // Waiting out a slot is the backend's slowness, not yet an outage: no markDown here.
        const timer = setTimeout(() => {
          const i = g.waiters.indexOf(w);
          if (i >= 0) g.waiters.splice(i, 1);
          // The holders' deadlines come first and usually mark it down: then say so.
          reject(g.down ? new BackendUnavailable(b, g.down.reason) : new BackendUnavailable(b, 'no slot free within the deadline', 'busy'));
        }, Math.max(0, waitMs));
        g.waiters.push(w);
      });
    }
    g.held++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      g.held--;
      const w = g.waiters.shift();
      if (w) w.enter();
    };
  }

  /** `b` failed (deadline or refusal): jobs fail at once, waiters too, and `probe` retries it with backoff. */
  markDown(b: string, reason: string, probe: Probe): void {
    if (this.closed) return;
    const g = this.gate(b);
    if (g.down) return; // one outage, one backoff schedule
    g.down = { reason, failures: 1 };
    this.o.log(`IMAP backend ${b} unavailable: ${reason}`);
    for (const w of g.waiters.splice(0)) w.fail(new BackendUnavailable(b, reason));
    this.schedule(b, g, probe);
  }

  private schedule(b: string, g: Gate, probe: Probe): void {
    if (g.timer || g.probing || !g.down || this.closed) return;
    g.timer = setTimeout(() => {
      g.timer = null;
      g.probing = true;
      probe().then(
        () => {
          g.probing = false;
          if (!g.down || this.closed) return;
          g.down = null;
          this.o.log(`IMAP backend ${b} reachable again`, 'notice');
        },
        (e: unknown) => {
          g.probing = false;
          if (!g.down) return;
          // Anything but the backend's own failure (the frontend gone, say) is the pool's business.
          if (e instanceof BackendUnavailable) g.down = { reason: g.down.reason, failures: g.down.failures + 1 };
          this.schedule(b, g, probe);
        },
      );
    }, backoffDelay(g.down.failures, this.o.backoffMinMs ?? 250, this.o.backoffMaxMs ?? 5000));
    g.timer.unref();
  }

  close(): void {
    this.closed = true;
    for (const [b, g] of this.gates) {
      if (g.timer) clearTimeout(g.timer);
      g.timer = null;
      for (const w of g.waiters.splice(0)) w.fail(new BackendUnavailable(b, 'closed'));
    }
  }
}
