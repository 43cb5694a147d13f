// The host list every directory table shares: hosts tried in the order given (the first
// that answers wins), a host that failed left alone for a backoff that doubles up to a
// bound, then tried again by the next lookup, so the table recovers by itself. Postfix's
// pgsql/mysql tables pick among live hosts at random and stay away 60 s; we keep the
// admin's order (a primary and its replicas) and a shorter backoff.
import { StoreError } from '../core/contract';
import type { Log } from '../store/registry';

const BACKOFF_START_MS = 250;
const BACKOFF_MAX_MS = 5000;

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

export class HostList<H> {
  readonly states: HostState[];

  constructor(
    readonly type: string,
    readonly hosts: readonly H[],
    names: readonly string[],
    private readonly log: Log,
  ) {
    this.states = names.map((name) => ({ name, downUntil: 0, failures: 0, lastError: '' }));
  }

  /**
   * Run `fn` on the first host that is not backing off, the next on failure. Throws
   * StoreError when none answered (every host failed or is backing off); a QueryError is
   * passed on at once.
   */
  async run<T>(fn: (host: H, index: number) => Promise<T>): Promise<T> {
    let last = '';
    let tried = 0;
    for (let i = 0; i < this.hosts.length; i++) {
      const st = this.states[i]!;
      if (st.downUntil > Date.now()) {
        last ||= st.lastError;
        continue;
      }
      tried++;
      try {
        const r = await fn(this.hosts[i]!, i);
        if (st.failures > 0) this.log(`${this.type}: ${st.name} is back`, `${this.type}: ${st.name}: up and down`);
        st.failures = 0;
        st.downUntil = 0;
        return r;
      } catch (e) {
        if (e instanceof QueryError) {
          // the directory's own words go to the log; the client learns only that the query failed
          // (the message holds the client's key: escaped by the logger, bounded per host here)
          this.log(`${this.type}: ${st.name}: query failed: ${e.message}`, `${this.type}: ${st.name}: query failed`);
          throw new StoreError(`${this.type} query failed`, { cause: e });
        }
        last = shortReason(e);
        this.down(st, last, e);
      }
    }
    throw new StoreError(tried === 0 ? `${this.type} hosts down (${last || 'backing off'})` : `${this.type} unavailable: ${last}`);
  }

  private down(st: HostState, reason: string, e: unknown): void {
    st.failures++;
    st.lastError = reason;
    st.downUntil = Date.now() + Math.min(BACKOFF_START_MS * 2 ** (st.failures - 1), BACKOFF_MAX_MS);
    if (st.failures === 1) this.log(`${this.type}: ${st.name} failed: ${(e as Error)?.message ?? String(e)}`, `${this.type}: ${st.name}: up and down`);
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

/** A small pool of connections to one host: idle ones reused, at most `size` open. */
export class ConnPool<C> {
  private readonly idle: C[] = [];
  private open = 0;
  private readonly waiters: Array<(c: C | null) => void> = [];

  constructor(
    private readonly size: number,
    private readonly connect: () => Promise<C>,
    private readonly destroy: (c: C) => void,
    /** False for a connection the server has closed since it went idle. */
    private readonly alive: (c: C) => boolean = () => true,
  ) {}

  /**
   * Run fn on a connection; a connection whose use threw is dropped, not reused. A reused
   * connection that fails other than with a QueryError (the server restarted since) is
   * retried once on a fresh one, so a directory restart costs no TEMP.
   */
  async use<T>(fn: (c: C) => Promise<T>): Promise<T> {
    const reused = this.idle.length > 0;
    try {
      return await this.once(fn);
    } catch (e) {
      if (!reused || e instanceof QueryError) throw e;
      this.drain();
      return this.once(fn);
    }
  }

  private async once<T>(fn: (c: C) => Promise<T>): Promise<T> {
    const c = await this.acquire();
    let ok = false;
    try {
      const r = await fn(c);
      ok = true;
      return r;
    } finally {
      this.release(c, ok);
    }
  }

  private async acquire(): Promise<C> {
    let c: C | undefined;
    while ((c = this.idle.pop()) !== undefined) {
      if (this.alive(c)) return c;
      this.open--;
      this.destroy(c);
    }
    if (this.open < this.size) {
      this.open++;
      try {
        return await this.connect();
      } catch (e) {
        this.open--;
        this.wakeOne();
        throw e;
      }
    }
    const got = await new Promise<C | null>((res) => this.waiters.push(res));
    return got ?? this.acquire();
  }

  private release(c: C, ok: boolean): void {
    if (!ok) {
      this.open--;
      this.destroy(c);
      this.wakeOne();
      return;
    }
    const w = this.waiters.shift();
    if (w) w(c);
    else this.idle.push(c);
  }

  /** A slot freed: let a waiter open its own connection. */
  private wakeOne(): void {
    this.waiters.shift()?.(null);
  }

  /** Drop idle connections (after a failure, they are likely dead too). */
  drain(): void {
    for (const c of this.idle.splice(0)) {
      this.open--;
      this.destroy(c);
    }
  }

  close(): void {
    this.drain();
  }
}
