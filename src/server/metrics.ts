// Counters for Prometheus (smmapd_metrics_listen). Each process counts its own answers with
// plain array increments (the request path pays no more than that and two clock reads);
// at a scrape they become metric objects in prom-client's JSON shape, which metrics-http.ts
// renders (and, with workers, the primary sums). This module loads nothing: prom-client is
// required only where metrics are configured.
//
// The `map` label is never the client's word: a configured map name (smmapd_map_NAME), `smmapd`
// for the Cyrus verification asked under that name, `other` for the verification asked under
// any other name (Cyrus ignores the name; a mistyped map name in main.cf shows here), and
// `policy` for the policy service. So the series are bounded by the configuration. Which
// label a request counts under is the router's decision (router.ts).
import { busyPollSeconds } from '../busy-poll';
import type { CacheStats } from './answer-cache';

/** Latency bucket bounds in seconds: a cache hit is µs, a live IMAP lookup up to seconds. */
export const BUCKETS: readonly number[] = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export const VERIFY_LABEL = 'smmapd';
export const OTHER_LABEL = 'other';
export const POLICY_LABEL = 'policy';
/** Label indexes that always exist; configured maps follow. */
export const VERIFY = 0;
export const OTHER = 1;
export const POLICY = 2;

const STATUSES = ['OK', 'NOTFOUND', 'TEMP', 'TIMEOUT', 'PERM'] as const;
const OUTCOMES = ['ok', 'nonexistent', 'overquota', 'denied', 'failed'] as const;
const STATUS_IX: Readonly<Record<string, number>> = Object.fromEntries(STATUSES.map((s, i) => [s, i]));
const OUTCOME_IX: Readonly<Record<string, number>> = Object.fromEntries(OUTCOMES.map((s, i) => [s, i]));
const CELLS = STATUSES.length * OUTCOMES.length;
const TEMP_FAILED = STATUS_IX.TEMP! * OUTCOMES.length + OUTCOME_IX.failed!;
/** Every policy reply kind (ActionKind and norecipient): all present from the start, at 0. */
export const POLICY_KINDS = ['success', 'nouser', 'overquota', 'toolarge', 'failure', 'norecipient'] as const;

/** One sample in prom-client's JSON shape (Registry.getMetricsAsJSON). */
export interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** How the primary merges a metric over processes (prom-client's aggregators). */
export type Aggregator = 'sum' | 'first' | 'min' | 'max' | 'average' | 'omit';

/** One metric in prom-client's JSON shape; what crosses the cluster channel. */
export interface MetricJSON {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary';
  values: MetricValue[];
  aggregator: Aggregator;
}


/** What a scrape reads from the service: the directories' hosts and the replica's age. */
export interface MetricsProbes {
  /** Every host of every configured directory map, up unless its last attempt failed. */
  directories(): ReadonlyArray<{ readonly map: string; readonly host: string; readonly up: boolean }>;
  /** When `smmapctl sync` last wrote the store (Unix seconds), or null. */
  lastSync(): number | null;
}

const NO_PROBES: MetricsProbes = { directories: () => [], lastSync: () => null };

export class Metrics {
  /** Label values by index: VERIFY, OTHER, POLICY, then every map configured in this process's life. */
  private readonly labels: string[] = [VERIFY_LABEL, OTHER_LABEL, POLICY_LABEL];
  /** Which label indexes are directory maps (their TEMP is not a store error). */
  private readonly directory: boolean[] = [false, false, false];
  /** A request's map name (as asked, and lower-cased) → label index; names not here are OTHER. */
  private byName = new Map<string, number>([[VERIFY_LABEL, VERIFY]]);
  /** Per label: answers per (status, outcome) cell; latency buckets (not cumulative, then overflow); latency sum. */
  private readonly answers: number[][] = [];
  private readonly buckets: number[][] = [];
  private readonly sums: number[] = [];
  readonly cache: CacheStats = { hits: 0, misses: 0 };
  connectionsOpened = 0;
  connectionsClosed = 0;
  /** Clients turned away before their first request, by why (RefusalReason). */
  readonly refused = new Map<string, number>();
  protocolErrors = 0;
  private readonly policyActions = new Map<string, number>(POLICY_KINDS.map((k) => [k, 0]));
  private reloadOk = 1;
  private reloadAt = Date.now() / 1000;

  constructor(private readonly probes: MetricsProbes = NO_PROBES) {
    for (let i = 0; i < this.labels.length; i++) this.addCells();
  }

  private addCells(): void {
    this.answers.push(new Array<number>(CELLS).fill(0));
    this.buckets.push(new Array<number>(BUCKETS.length + 1).fill(0));
    this.sums.push(0);
  }

  /**
   * The configured map names (at start and at each reload). A name configured once keeps its
   * series for the life of the process (counters do not vanish on reload); the set is the admin's.
   */
  setMaps(names: readonly string[]): void {
    const byName = new Map<string, number>([[VERIFY_LABEL, VERIFY]]);
    for (const raw of names) {
      const name = raw.toLowerCase();
      let i = this.labels.indexOf(name, POLICY + 1);
      if (i < 0) {
        i = this.labels.length;
        this.labels.push(name);
        this.directory.push(true);
        this.addCells();
      }
      byName.set(name, i);
    }
    this.byName = byName;
  }

  /** The label index for a map name (matched as the router matches it, whatever its case). */
  labelOf(name: string): number {
    return this.byName.get(name) ?? this.byName.get(name.toLowerCase()) ?? OTHER;
  }

  /** A start time for answered(): cheap, monotonic. */
  static now(): bigint {
    return process.hrtime.bigint();
  }

  /** One answer given; `since` from now() when the request was read. */
  answered(status: string, outcome: string, label: number, since: bigint): void {
    const si = STATUS_IX[status];
    const oi = OUTCOME_IX[outcome];
    if (si !== undefined && oi !== undefined) this.answers[label]![si * OUTCOMES.length + oi]!++;
    const s = Number(process.hrtime.bigint() - since) / 1e9;
    this.sums[label]! += s;
    let i = 0;
    while (i < BUCKETS.length && s > BUCKETS[i]!) i++;
    this.buckets[label]![i]!++;
  }

  policyAction(kind: string): void {
    const n = this.policyActions.get(kind);
    if (n !== undefined) this.policyActions.set(kind, n + 1);
  }

  /** SIGHUP's outcome (Prometheus's own config_last_reload_* gauges). */
  reloaded(ok: boolean): void {
    this.reloadOk = ok ? 1 : 0;
    if (ok) this.reloadAt = Date.now() / 1000;
  }

  /** This process's figures as metric objects; the label set is bounded by the configuration. */
  toJSON(): MetricJSON[] {
    const out: MetricJSON[] = [];
    const metric = (name: string, type: MetricJSON['type'], help: string, values: MetricValue[], aggregator: Aggregator = 'sum'): void => {
      out.push({ name, help, type, values, aggregator });
    };
    const answers: MetricValue[] = [];
    const hist: MetricValue[] = [];
    let storeErrors = 0;
    const dirErrors: MetricValue[] = [];
    this.labels.forEach((map, li) => {
      const cells = this.answers[li]!;
      cells.forEach((n, c) => {
        if (n > 0) answers.push({ value: n, labels: { status: STATUSES[Math.floor(c / OUTCOMES.length)]!, outcome: OUTCOMES[c % OUTCOMES.length]!, map } });
      });
      if (this.directory[li]) dirErrors.push({ value: cells[TEMP_FAILED]!, labels: { map } });
      else storeErrors += cells[TEMP_FAILED]!;
      let cum = 0;
      const b = this.buckets[li]!;
      BUCKETS.forEach((le, i) => {
        cum += b[i]!;
        hist.push({ value: cum, labels: { map, le }, metricName: 'smmapd_answer_duration_seconds_bucket' });
      });
      cum += b[BUCKETS.length]!;
      hist.push({ value: cum, labels: { map, le: '+Inf' }, metricName: 'smmapd_answer_duration_seconds_bucket' });
      hist.push({ value: this.sums[li]!, labels: { map }, metricName: 'smmapd_answer_duration_seconds_sum' });
      hist.push({ value: cum, labels: { map }, metricName: 'smmapd_answer_duration_seconds_count' });
    });
    metric('smmapd_answers_total', 'counter', 'Answers given, by reply status, audit outcome and map (a configured map, smmapd or other for the Cyrus verification, policy).', answers);
    metric('smmapd_answer_duration_seconds', 'histogram', 'Time from a request read to its answer, by map.', hist);
    const one = (name: string, type: MetricJSON['type'], help: string, value: number, aggregator: Aggregator = 'sum'): void =>
      metric(name, type, help, [{ value, labels: {} }], aggregator);
    one('smmapd_cache_hits_total', 'counter', 'Answers served from the answer cache.', this.cache.hits);
    one('smmapd_cache_misses_total', 'counter', 'Answers that asked the store.', this.cache.misses);
    one('smmapd_store_errors_total', 'counter', 'Answers that were TEMP because the mailbox store could not answer (directory maps: smmapd_directory_errors_total).', storeErrors);
    metric('smmapd_directory_errors_total', 'counter', 'Answers of a directory map that were TEMP because the directory could not answer.', dirErrors);
    one('smmapd_connections_total', 'counter', 'Connections accepted and served.', this.connectionsOpened);
    one('smmapd_connections_open', 'gauge', 'Connections open now.', Math.max(0, this.connectionsOpened - this.connectionsClosed));
    out.push(refusedMetric(this.refused));
    one('smmapd_busy_poll_seconds_total', 'counter', 'Time the event loop spent polling after activity instead of sleeping (smmapd_busy_poll).', busyPollSeconds());
    one('smmapd_protocol_errors_total', 'counter', 'Connections closed for a malformed request.', this.protocolErrors);
    metric('smmapd_policy_actions_total', 'counter', 'Policy service replies by kind.', [...this.policyActions].map(([kind, value]) => ({ value, labels: { kind } })));
    one('smmapd_config_last_reload_successful', 'gauge', 'Whether the last configuration reload succeeded (0 if it failed in any process).', this.reloadOk, 'min');
    one('smmapd_config_last_reload_success_timestamp_seconds', 'gauge', 'When the configuration was last loaded successfully (the oldest over processes), Unix seconds.', Math.floor(this.reloadAt), 'min');
    const dirs = this.probes.directories().map((d): MetricValue => ({ value: d.up ? 1 : 0, labels: { map: d.map, host: d.host } }));
    metric('smmapd_directory_up', 'gauge', 'A directory map host: 1 unless its last attempt failed (in any process).', dirs, 'min');
    const synced = this.probes.lastSync();
    if (synced !== null) one('smmapd_replica_last_sync_timestamp_seconds', 'gauge', 'When smmapctl sync last wrote the store, Unix seconds.', synced, 'max');
    return out;
  }
}

/** Clients turned away before their first request, by reason ("connection limit", "not allowed"). */
export function refusedMetric(counts: ReadonlyMap<string, number>): MetricJSON {
  return {
    name: 'smmapd_connections_refused_total',
    help: 'Connections refused before their first request: past smmapd_max_connections, or a peer smmapd_allow_from does not list.',
    type: 'counter',
    aggregator: 'sum',
    values: [...counts].map(([reason, value]) => ({ value, labels: { reason } })),
  };
}

/** Metrics whose values only grow: what the primary keeps of a worker that exited. */
export function isMonotonic(m: MetricJSON): boolean {
  return m.type === 'counter' || m.type === 'histogram';
}

function valueKey(v: MetricValue): string {
  return `${v.metricName ?? ''}\u0000${Object.entries(v.labels).map(([k, x]) => `${k}=${x}`).join('\u0000')}`;
}

/** Sum metric lists sample by sample (same name and labels), keeping the first list's order. */
export function sumMetrics(lists: ReadonlyArray<readonly MetricJSON[]>): MetricJSON[] {
  const byName = new Map<string, { m: MetricJSON; at: Map<string, MetricValue> }>();
  for (const list of lists) {
    for (const m of list) {
      let e = byName.get(m.name);
      if (e === undefined) {
        e = { m: { ...m, values: [] }, at: new Map() };
        byName.set(m.name, e);
      }
      for (const v of m.values) {
        const k = valueKey(v);
        const have = e.at.get(k);
        if (have) have.value += v.value;
        else {
          const copy = { ...v, labels: { ...v.labels } };
          e.at.set(k, copy);
          e.m.values.push(copy);
        }
      }
    }
  }
  return [...byName.values()].map((e) => e.m);
}
