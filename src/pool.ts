// Pools of connections to a server. WaitQueue, the takers waiting for a connection of a
// full pool until their deadline, is shared by both pools: ConnPool, every directory table's
// pool for one host (table/hosts.ts), and the IMAP pool (store/imap-pool.ts, which keeps
// the IMAP parts around it: login, the server's down state and probe, Murder backends).
// ConnPool reuses idle connections, bounds those open and the lookups waiting, and holds
// every use to its deadline (deadline.ts): a use still running at it is abandoned with its
// connection. Its errors say whose fault a failure is: the server's answer (QueryError: the
// connection is sound), the deadline (HungError: the connection was dropped), or the
// pool's own queue (BusyError: not the server's fault).
import { promised } from './core/contract';
import { within, type Deadline } from './deadline';

/** The server answered that the query itself is wrong: no other host would do better, and the connection is sound. */
export class QueryError extends Error {}

/**
 * The use spent its whole deadline (connecting or querying): its connection was destroyed,
 * so the query cannot run later (the host list marks the host down).
 */
export class HungError extends Error {}

/**
 * Not the host's fault: its pool has too many lookups queued, or it was marked down while
 * this lookup waited. The next host is tried; the host is not marked down for it.
 */
export class BusyError extends Error {}

/** Lookups that may wait for a connection, per pool connection: past it the answer is TEMP at once. */
export const QUEUE_PER_CONNECTION = 64;

/** One taker waiting for a connection; it leaves the queue when it is served, fails or reaches its deadline. */
export interface Waiter<C> {
  /** Hand over `c`; false when the waiter has already left (then the caller keeps it). */
  give(c: C): boolean;
  fail(e: Error): void;
}

/**
 * The takers waiting for a connection of a full pool, first come first served, each until
 * its deadline (then `late()` is its error). Shared by the directory pools (ConnPool) and the
 * IMAP pool.
 */
export class WaitQueue<C> {
  private readonly waiters = new Set<Waiter<C>>();

  get size(): number {
    return this.waiters.size;
  }

  /** Wait until given a connection, failed, or `until` (a Date.now() time or a Deadline) passes. */
  wait(until: number | Deadline, late: () => Error): Promise<C> {
    return new Promise<C>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const settle = (): boolean => {
        if (done) return false;
        done = true;
        clearTimeout(timer);
        this.waiters.delete(w);
        return true;
      };
      const w: Waiter<C> = {
        give: (c) => settle() && (resolve(c), true),
        fail: (e) => void (settle() && reject(e)),
      };
      this.waiters.add(w);
      const left = typeof until === 'number' ? until - Date.now() : until.left;
      if (left !== Infinity) timer = setTimeout(() => w.fail(late()), Math.max(0, left));
    });
  }

  /** The first waiter, out of the queue; its deadline still runs (give() may then say it left). */
  take(): Waiter<C> | undefined {
    for (const w of this.waiters) {
      this.waiters.delete(w);
      return w;
    }
    return undefined;
  }

  /** Give `c` to the first waiter still waiting; false when none is. */
  give(c: C): boolean {
    for (let w = this.take(); w; w = this.take()) if (w.give(c)) return true;
    return false;
  }

  /** Every waiter fails, each with its own error. */
  failAll(e: () => Error): void {
    for (const w of [...this.waiters]) w.fail(e());
  }
}

/**
 * A small pool of connections to one host: idle ones reused, at most `size` open, at most
 * size x QUEUE_PER_CONNECTION lookups waiting for one. Every use has a deadline: a query
 * still running at it is abandoned with its connection (destroyed, never reused, so the
 * server cannot run it later), a lookup still waiting leaves the queue.
 */
export class ConnPool<C> {
  private readonly idle: C[] = [];
  private open = 0;
  /** null handed over: a slot is free, open a connection in it. */
  private readonly waiters = new WaitQueue<C | null>();
  private readonly maxWaiting: number;

  constructor(
    private readonly size: number,
    private readonly connect: () => Promise<C>,
    /** Close a connection; `abandoned`: a query may be under way on it, close it at once. */
    private readonly destroy: (c: C, abandoned: boolean) => void,
    /** False for a connection the server has closed since it went idle. */
    private readonly alive: (c: C) => boolean = () => true,
  ) {
    this.maxWaiting = size * QUEUE_PER_CONNECTION;
  }

  /** Lookups waiting for a connection (for tests and the bound). */
  get waiting(): number {
    return this.waiters.size;
  }

  /**
   * Run fn on a connection before `until` (HungError past it); a connection whose use threw
   * is dropped, not reused, unless the server answered with an error (QueryError). A reused connection that fails other than with a QueryError
   * (the server restarted since) is retried once on a fresh one, so a directory restart
   * costs no TEMP.
   */
  use<T>(fn: (c: C) => Promise<T>, until = Infinity): Promise<T> {
    const reused = this.idle.length > 0;
    const first = this.once(fn, until);
    if (!reused) return first;
    return first.catch((e: unknown) => {
      if (e instanceof QueryError || e instanceof HungError || e instanceof BusyError || Date.now() >= until) throw e;
      this.drain();
      return this.once(fn, until);
    });
  }

  /** fn on a connection: an idle one at once (no turn of the event loop on the busy path), else one acquired. */
  private once<T>(fn: (c: C) => Promise<T>, until: number): Promise<T> {
    const c = this.idleConnection();
    return c !== undefined ? this.run(c, fn, until) : this.acquire(until).then((got) => this.run(got, fn, until));
  }

  private run<T>(c: C, fn: (c: C) => Promise<T>, until: number): Promise<T> {
    return this.bounded(promised(() => fn(c)), until, () => this.abandon(c)).then(
      (r) => {
        this.release(c, true);
        return r;
      },
      (e: unknown) => {
        // the server answered with an error: the connection is sound, reuse it (a key that
        // makes the query fail must not cost a reconnect per request)
        this.release(c, e instanceof QueryError);
        throw e;
      },
    );
  }

  /** p, or HungError at `until` (after calling onLate). */
  private bounded<T>(p: Promise<T>, until: number, onLate: () => void): Promise<T> {
    return within(p, until, () => new HungError('timed out'), onLate);
  }

  /** A connection whose query ran past its deadline: closed now; release() sees it is no longer ours. */
  private readonly abandoned = new Set<C>();

  private abandon(c: C): void {
    this.abandoned.add(c);
    this.destroy(c, true);
  }

  /** An idle connection still alive (the dead ones closed on the way), or undefined. */
  private idleConnection(): C | undefined {
    let c: C | undefined;
    while ((c = this.idle.pop()) !== undefined) {
      if (this.alive(c)) return c;
      this.open--;
      this.destroy(c, false);
    }
    return undefined;
  }

  /** No idle connection: a new one in a free slot, else the first one released (or slot freed) before `until`. */
  private acquire(until: number): Promise<C> {
    if (this.open < this.size) return this.fresh(until);
    if (this.waiters.size >= this.maxWaiting) return Promise.reject(new BusyError(`${this.waiters.size} lookups queued`));
    return this.waiters.wait(until, () => new BusyError('timed out (queued)')).then((got) => got ?? this.fresh(until));
  }

  /** Open a connection in a free slot; one that comes too late is closed when it comes. */
  private fresh(until: number): Promise<C> {
    this.open++;
    let late = false;
    const p = this.connect().then(
      (c) => {
        if (late) {
          this.open--;
          this.destroy(c, false);
          this.wakeOne();
        }
        return c;
      },
      (e: unknown) => {
        this.open--;
        this.wakeOne();
        throw e;
      },
    );
    return this.bounded(p, until, () => (late = true));
  }

  private release(c: C, ok: boolean): void {
    if (this.abandoned.delete(c)) {
      this.open--;
      this.wakeOne();
      return;
    }
    if (!ok) {
      this.open--;
      this.destroy(c, false);
      this.wakeOne();
      return;
    }
    if (!this.waiters.give(c)) this.idle.push(c);
  }

  /** A slot freed: let a waiter open its own connection. */
  private wakeOne(): void {
    this.waiters.give(null);
  }

  /** The host was marked down: its idle connections go, and lookups waiting here try elsewhere. */
  hostDown(reason: string): void {
    this.drain();
    this.waiters.failAll(() => new BusyError(reason));
  }

  /** Drop idle connections (after a failure, they are likely dead too). */
  drain(): void {
    for (const c of this.idle.splice(0)) {
      this.open--;
      this.destroy(c, false);
    }
  }

  close(): void {
    this.drain();
  }
}
