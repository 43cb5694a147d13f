// The host list every directory table shares: hosts tried in the order given (the first
// that answers wins), a host that failed left alone for a backoff that doubles up to a
// bound, then tried again by one lookup, so the table recovers by itself. One deadline per
// lookup (smmapd_maps_timeout) bounds everything: a query still running at it is abandoned
// with its connection and its host marked down (a hung server is not waited for again), and
// the lookups queued for a pool are bounded and leave at the deadline. Postfix's
// pgsql/mysql tables pick among live hosts at random and stay away 60 s; we keep the
// admin's order (a primary and its replicas) and a shorter backoff. Each host's connections
// are a ConnPool (src/pool.ts, whose names are passed on here for the drivers).
import { promised, StoreError, type StoreLog } from '../core/contract';
import { backoffDelay } from '../backoff';
import { BusyError, ConnPool, HungError, QueryError } from '../pool';
import { closeDomainTables, type Templates } from './expand';

export { BusyError, ConnPool, HungError, QueryError, QUEUE_PER_CONNECTION } from '../pool';

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

/** A short reason for a TEMP reply: the error code when there is one, else the first words. */
export function shortReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { code?: unknown };
  if (typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code)) return err.code;
  const m = String((e as Error)?.message ?? e).split('\n')[0]!;
  return m.length > 60 ? `${m.slice(0, 57)}...` : m;
}

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
  run<T>(fn: (host: H, index: number, until: number) => Promise<T>, until = Infinity): Promise<T> {
    return this.tryFrom(0, fn, until, '', 0);
  }

  /** Hosts i and on, each when the one before failed; `last` is the latest failure, `tried` the hosts tried. */
  private tryFrom<T>(i: number, fn: (host: H, index: number, until: number) => Promise<T>, until: number, last: string, tried: number): Promise<T> {
    for (; i < this.hosts.length; i++) {
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
      const host = i;
      return promised(() => fn(this.hosts[host]!, host, this.share(host, now, until))).then(
        (r) => {
          if (probe) this.probing[host] = false;
          if (st.failures > 0) this.log(`${this.type}: ${st.name} is back`, 'notice', `${this.type}: ${st.name}: up and down`);
          st.failures = 0;
          st.downUntil = 0;
          return r;
        },
        (e: unknown) => {
          if (probe) this.probing[host] = false;
          return this.tryFrom(host + 1, fn, until, this.failed(host, e), tried + 1);
        },
      );
    }
    return Promise.reject(new StoreError(tried === 0 ? `${this.type} hosts down (${last || 'backing off'})` : `${this.type} unavailable: ${last}`));
  }

  /** Host i failed with `e`: a QueryError is the lookup's answer (thrown); otherwise the reason, the host marked down unless only busy. */
  private failed(i: number, e: unknown): string {
    const st = this.states[i]!;
    if (e instanceof QueryError) {
      // the directory's own words go to the log; the client learns only that the query failed
      // (the message holds the client's key: escaped by the logger, bounded per host here)
      this.log(`${this.type}: ${st.name}: query failed: ${e.message}`, 'error', `${this.type}: ${st.name}: query failed`);
      throw new StoreError(`${this.type} query failed`, { cause: e });
    }
    const reason = e instanceof BusyError || e instanceof HungError ? e.message : shortReason(e);
    if (!(e instanceof BusyError)) this.down(i, reason, e);
    return reason;
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

/** What the pgsql, mysql and ldap tables share: templates and hosts, closed together. */
export abstract class HostTable<H extends { close(): void }> {
  protected abstract readonly t: Templates;
  protected abstract readonly hosts: HostList<H>;

  hostStates(): ReadonlyArray<{ readonly name: string; readonly failures: number }> {
    return this.hosts.states;
  }

  close(): void {
    closeDomainTables(this.t.ctx);
    for (const h of this.hosts.hosts) h.close();
  }
}

/**
 * How long one host may take to accept a connection: the lookup's deadline shared among the
 * hosts, so that a host that drops packets (no refusal) still leaves time for the next.
 */
export function connectTimeout(cfg: { readonly mapTimeoutMs: number }, hosts: number): number {
  return Math.max(500, Math.floor(cfg.mapTimeoutMs / Math.max(1, hosts)));
}

