// The host list every directory table shares: hosts tried in the order given (the first
// that answers wins), a host that failed left alone for a backoff that doubles up to a
// bound, then tried again by one lookup, so the table recovers by itself. One deadline per
// lookup (smmapd_maps_timeout) bounds everything: a query still running at it is abandoned
// with its connection and its host marked down (a hung server is not waited for again), and
// the lookups queued for a pool are bounded and leave at the deadline. Postfix's
// pgsql/mysql tables pick among live hosts at random and stay away 60 s; we keep the
// admin's order (a primary and its replicas) and a shorter backoff.
import { StoreError, type StoreLog } from '../core/contract';
import { backoffDelay } from '../backoff';

const BACKOFF_START_MS = 250;
const BACKOFF_MAX_MS = 2000;
/** The least share of the deadline a host gets when there are several (a connect needs a few round trips). */
const MIN_SHARE_MS = 500;

export interface HostState {
  readonly name: string;
  downUntil: number;
  failures: number;
  lastError: string;
}

/** An error from the directory that says the query itself is wrong: no other host would do better. */
export class QueryError extends Error {}

/** A short reason for a TEMP reply: the error code when there is one, else the first words. */
export function shortReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { code?: unknown };
  if (typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code)) return err.code;
  const m = String((e as Error)?.message ?? e).split('\n')[0]!;
  return m.length > 60 ? `${m.slice(0, 57)}...` : m;
}

/**
 * The host spent the attempt's whole share of the deadline (connecting or querying): its
 * connection was destroyed, so the query cannot run later, and the host is marked down.
 */
export class HungError extends Error {}

/**
 * Not the host's fault: its pool has too many lookups queued, or it was marked down while
 * this lookup waited. The next host is tried; the host is not marked down for it.
 */
export class BusyError extends Error {}

/** Lookups that may wait for a connection, per pool connection: past it the answer is TEMP at once. */
export const QUEUE_PER_CONNECTION = 64;

/** The directory's own words for the log: its message, with the error's class when that says more (ldapts: `InvalidCredentialsError: Code: 0x31`). */
export function directoryReason(e: unknown): string {
  const err = e as Error | undefined;
  const msg = String(err?.message ?? e).trim();
  const name = typeof err?.name === 'string' ? err.name : '';
  return name !== '' && name.toLowerCase() !== 'error' && !msg.startsWith(name) ? `${name}: ${msg}` : msg;
}

export class HostList<H> {
  readonly states: HostState[];
  /** Hosts whose backoff ran out and that one lookup is trying again (the others keep away). */
  private readonly probing: boolean[];

  constructor(
    readonly type: string,
    readonly hosts: readonly H[],
    names: readonly string[],
    private readonly log: StoreLog,
  ) {
    this.states = names.map((name) => ({ name, downUntil: 0, failures: 0, lastError: '' }));
    this.probing = names.map(() => false);
  }

  /**
   * Run `fn` on the first host that is not backing off, the next on failure. Throws
   * StoreError when none answered (every host failed or is backing off); a QueryError is
   * passed on at once. `until` (a Date.now() time) is the lookup's deadline: each host gets
   * its share of what is left (shared among the live hosts still to try), which `fn` must
   * pass to ConnPool.use; a host that spends it all is marked down.
   */
  async run<T>(fn: (host: H, index: number, until: number) => Promise<T>, until = Infinity): Promise<T> {
    let last = '';
    let tried = 0;
    for (let i = 0; i < this.hosts.length; i++) {
      const st = this.states[i]!;
      const now = Date.now();
      if (now >= until) {
        last = 'timed out';
        break;
      }
      if (st.downUntil > now || this.probing[i]) {
        last ||= st.lastError;
        continue;
      }
      // a host back from its backoff is tried by one lookup at a time until it answers
      const probe = st.failures > 0;
      if (probe) this.probing[i] = true;
      tried++;
      try {
        const r = await fn(this.hosts[i]!, i, this.share(i, now, until));
        if (st.failures > 0) this.log(`${this.type}: ${st.name} is back`, 'notice', `${this.type}: ${st.name}: up and down`);
        st.failures = 0;
        st.downUntil = 0;
        return r;
      } catch (e) {
        if (e instanceof QueryError) {
          // the directory's own words go to the log; the client learns only that the query failed
          // (the message holds the client's key: escaped by the logger, bounded per host here)
          this.log(`${this.type}: ${st.name}: query failed: ${e.message}`, 'error', `${this.type}: ${st.name}: query failed`);
          throw new StoreError(`${this.type} query failed`, { cause: e });
        }
        last = e instanceof BusyError || e instanceof HungError ? e.message : shortReason(e);
        if (!(e instanceof BusyError)) this.down(i, last, e);
      } finally {
        if (probe) this.probing[i] = false;
      }
    }
    throw new StoreError(tried === 0 ? `${this.type} hosts down (${last || 'backing off'})` : `${this.type} unavailable: ${last}`);
  }

  /** The deadline of one attempt on host i: what is left, shared among the live hosts from i on. */
  private share(i: number, now: number, until: number): number {
    if (until === Infinity) return until;
    let live = 0;
    for (let j = i; j < this.states.length; j++) if (j === i || (this.states[j]!.downUntil <= now && !this.probing[j])) live++;
    return live <= 1 ? until : Math.min(until, now + Math.max(MIN_SHARE_MS, Math.floor((until - now) / live)));
  }

  private down(i: number, reason: string, e: unknown): void {
    const st = this.states[i]!;
    const now = Date.now();
    // lookups that were under way when it failed count once
    if (st.downUntil > now) return;
    st.failures++;
    st.lastError = reason;
    st.downUntil = now + backoffDelay(st.failures, BACKOFF_START_MS, BACKOFF_MAX_MS);
    if (st.failures === 1) this.log(`${this.type}: ${st.name} failed: ${directoryReason(e)}`, 'error', `${this.type}: ${st.name}: up and down`);
    // its idle connections are likely dead too, and lookups queued for it would only wait
    const h = this.hosts[i];
    if (h instanceof ConnPool) h.hostDown(reason);
  }
}

/**
 * How long one host may take to accept a connection: the lookup's deadline shared among the
 * hosts, so that a host that drops packets (no refusal) still leaves time for the next.
 */
export function connectTimeout(cfg: { readonly mapTimeoutMs: number }, hosts: number): number {
  return Math.max(500, Math.floor(cfg.mapTimeoutMs / Math.max(1, hosts)));
}

/** Reject with StoreError after `ms`: the per-lookup deadline (smmapd_maps_timeout). */
export function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreError(`${what} timed out`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

interface Waiter<C> {
  /** A connection handed over, or null: a slot is free, open one. */
  give(c: C | null): void;
  fail(e: Error): void;
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
  private readonly waiters = new Set<Waiter<C>>();
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
  async use<T>(fn: (c: C) => Promise<T>, until = Infinity): Promise<T> {
    const reused = this.idle.length > 0;
    try {
      return await this.once(fn, until);
    } catch (e) {
      if (!reused || e instanceof QueryError || e instanceof HungError || e instanceof BusyError || Date.now() >= until) throw e;
      this.drain();
      return this.once(fn, until);
    }
  }

  private async once<T>(fn: (c: C) => Promise<T>, until: number): Promise<T> {
    const c = await this.acquire(until);
    let ok = false;
    try {
      const r = await this.bounded(fn(c), until, () => this.abandon(c));
      ok = true;
      return r;
    } catch (e) {
      // the server answered with an error: the connection is sound, reuse it (a key that
      // makes the query fail must not cost a reconnect per request)
      ok = e instanceof QueryError;
      throw e;
    } finally {
      this.release(c, ok);
    }
  }

  /** p, or HungError at `until` (after calling onLate). */
  private bounded<T>(p: Promise<T>, until: number, onLate: () => void): Promise<T> {
    if (until === Infinity) return p;
    return new Promise<T>((resolve, reject) => {
      let late = false;
      const timer = setTimeout(() => {
        late = true;
        onLate();
        reject(new HungError('timed out'));
      }, Math.max(0, until - Date.now()));
      p.then(
        (v) => {
          if (late) return;
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          if (late) return;
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }

  /** A connection whose query ran past its deadline: closed now; release() sees it is no longer ours. */
  private readonly abandoned = new Set<C>();

  private abandon(c: C): void {
    this.abandoned.add(c);
    this.destroy(c, true);
  }

  private async acquire(until: number): Promise<C> {
    let c: C | undefined;
    while ((c = this.idle.pop()) !== undefined) {
      if (this.alive(c)) return c;
      this.open--;
      this.destroy(c, false);
    }
    if (this.open < this.size) return this.fresh(until);
    if (this.waiters.size >= this.maxWaiting) throw new BusyError(`${this.waiters.size} lookups queued`);
    const got = await new Promise<C | null>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const w: Waiter<C> = {
        give: (x) => {
          clearTimeout(timer);
          resolve(x);
        },
        fail: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.add(w);
      if (until !== Infinity) {
        timer = setTimeout(() => {
          this.waiters.delete(w);
          reject(new BusyError('timed out (queued)'));
        }, Math.max(0, until - Date.now()));
      }
    });
    return got ?? this.fresh(until);
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
    const w = this.next();
    if (w) w.give(c);
    else this.idle.push(c);
  }

  private next(): Waiter<C> | undefined {
    for (const w of this.waiters) {
      this.waiters.delete(w);
      return w;
    }
    return undefined;
  }

  /** A slot freed: let a waiter open its own connection. */
  private wakeOne(): void {
    this.next()?.give(null);
  }

  /** The host was marked down: its idle connections go, and lookups waiting here try elsewhere. */
  hostDown(reason: string): void {
    this.drain();
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w.fail(new BusyError(reason));
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
