// Counters for Prometheus (smmapd_metrics_listen). Each process counts its own answers with
// plain increments; the listener's primary sums the workers' snapshots (metrics-http.ts).
// Only what a scrape needs is kept: per (status, outcome, map) counts, one latency
// histogram, cache, store, connection and policy action counts.

/** Latency bucket bounds in seconds: a cache hit is µs, a live IMAP lookup up to seconds. */
export const BUCKETS: readonly number[] = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** What a process sends its primary; plain JSON so it crosses the cluster IPC channel as is. */
export interface MetricsSnapshot {
  /** `status\toutcome\tmap` → answers. */
  answers: Record<string, number>;
  /** Per bucket (not cumulative), then the overflow past the last bound. */
  buckets: number[];
  durationSum: number;
  cacheHits: number;
  cacheMisses: number;
  storeErrors: number;
  connectionsOpened: number;
  connectionsClosed: number;
  connectionsRefused: number;
  protocolErrors: number;
  /** Policy action kind (success, nouser, ...) → requests. */
  policyActions: Record<string, number>;
}

export function emptySnapshot(): MetricsSnapshot {
  return {
    answers: {}, buckets: new Array<number>(BUCKETS.length + 1).fill(0), durationSum: 0,
    cacheHits: 0, cacheMisses: 0, storeErrors: 0,
    connectionsOpened: 0, connectionsClosed: 0, connectionsRefused: 0, protocolErrors: 0, policyActions: {},
  };
}

/** Cache counters the Answerer bumps; one object per process, kept across reloads. */
export interface CacheStats {
  hits: number;
  misses: number;
}

/** Distinct (status, outcome, map) series kept; past it new map names count as `(other)`. */
export const MAX_SERIES = 200;

/** A client-chosen name as a label value: printable ASCII, at most 64 characters. */
function labelSafe(s: string): string {
  const t = s.length > 64 ? s.slice(0, 64) : s;
  return /^[\x20-\x7e]*$/.test(t) && t.indexOf('}') < 0 ? t : t.replace(/[^\x20-\x7c\x7e]/g, '?');
}

export class Metrics {
  private readonly answers = new Map<string, number>();
  private readonly buckets = new Array<number>(BUCKETS.length + 1).fill(0);
  private durationSum = 0;
  readonly cache: CacheStats = { hits: 0, misses: 0 };
  storeErrors = 0;
  connectionsOpened = 0;
  connectionsClosed = 0;
  connectionsRefused = 0;
  protocolErrors = 0;
  private readonly policyActions = new Map<string, number>();

  /** A start time for answered(): cheap, monotonic. */
  static now(): bigint {
    return process.hrtime.bigint();
  }

  /** One answer given; `since` from now() when the request was read. */
  answered(status: string, outcome: string, map: string, since: bigint): void {
    let key = `${status}\t${outcome}\t${map}`;
    let n = this.answers.get(key);
    if (n === undefined) {
      // The map name is the client's: bound the label set, and keep it printable.
      key = this.answers.size >= MAX_SERIES ? `${status}\t${outcome}\t(other)` : `${status}\t${outcome}\t${labelSafe(map)}`;
      n = this.answers.get(key) ?? 0;
    }
    this.answers.set(key, n + 1);
    if (status === 'TEMP' && outcome === 'failed') this.storeErrors++;
    const s = Number(process.hrtime.bigint() - since) / 1e9;
    this.durationSum += s;
    let i = 0;
    while (i < BUCKETS.length && s > BUCKETS[i]!) i++;
    this.buckets[i]!++;
  }

  policyAction(kind: string): void {
    this.policyActions.set(kind, (this.policyActions.get(kind) ?? 0) + 1);
  }

  snapshot(): MetricsSnapshot {
    return {
      answers: Object.fromEntries(this.answers),
      buckets: [...this.buckets],
      durationSum: this.durationSum,
      cacheHits: this.cache.hits,
      cacheMisses: this.cache.misses,
      storeErrors: this.storeErrors,
      connectionsOpened: this.connectionsOpened,
      connectionsClosed: this.connectionsClosed,
      connectionsRefused: this.connectionsRefused,
      protocolErrors: this.protocolErrors,
      policyActions: Object.fromEntries(this.policyActions),
    };
  }
}

function addRecord(into: Record<string, number>, from: Record<string, number> | undefined): void {
  for (const [k, v] of Object.entries(from ?? {})) if (typeof v === 'number') into[k] = (into[k] ?? 0) + v;
}

/** Sum of snapshots (workers, and the last figures of workers that have exited). */
export function sumSnapshots(list: readonly MetricsSnapshot[]): MetricsSnapshot {
  const out = emptySnapshot();
  for (const s of list) {
    addRecord(out.answers, s.answers);
    addRecord(out.policyActions, s.policyActions);
    s.buckets.forEach((n, i) => {
      if (i < out.buckets.length) out.buckets[i]! += n;
    });
    out.durationSum += s.durationSum;
    out.cacheHits += s.cacheHits;
    out.cacheMisses += s.cacheMisses;
    out.storeErrors += s.storeErrors;
    out.connectionsOpened += s.connectionsOpened;
    out.connectionsClosed += s.connectionsClosed;
    out.connectionsRefused += s.connectionsRefused;
    out.protocolErrors += s.protocolErrors;
  }
  return out;
}

/** A label value in the exposition format: backslash, quote and newline escaped. */
function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function fmt(n: number): string {
  return Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
}

export interface RenderExtra {
  /** Unix seconds the serving process started. */
  readonly startTime: number;
  /** Worker processes summed (1 without workers). */
  readonly workers: number;
}

/** The Prometheus text exposition format, version 0.0.4. */
export function renderPrometheus(s: MetricsSnapshot, x: RenderExtra): string {
  const out: string[] = [];
  const head = (name: string, type: string, help: string): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  head('smmapd_answers_total', 'counter', 'Answers given, by reply status, audit outcome and map (socketmap name, or policy).');
  for (const [k, v] of Object.entries(s.answers).sort()) {
    const [status = '', outcome = '', map = ''] = k.split('\t');
    out.push(`smmapd_answers_total{status="${esc(status)}",outcome="${esc(outcome)}",map="${esc(map)}"} ${fmt(v)}`);
  }
  head('smmapd_answer_duration_seconds', 'histogram', 'Time from a request read to its answer.');
  let cum = 0;
  BUCKETS.forEach((b, i) => {
    cum += s.buckets[i] ?? 0;
    out.push(`smmapd_answer_duration_seconds_bucket{le="${b}"} ${cum}`);
  });
  cum += s.buckets[BUCKETS.length] ?? 0;
  out.push(`smmapd_answer_duration_seconds_bucket{le="+Inf"} ${cum}`);
  out.push(`smmapd_answer_duration_seconds_sum ${fmt(s.durationSum)}`, `smmapd_answer_duration_seconds_count ${cum}`);
  const counter = (name: string, help: string, v: number): void => {
    head(name, 'counter', help);
    out.push(`${name} ${fmt(v)}`);
  };
  counter('smmapd_cache_hits_total', 'Answers served from the answer cache.', s.cacheHits);
  counter('smmapd_cache_misses_total', 'Answers that asked the store.', s.cacheMisses);
  counter('smmapd_store_errors_total', 'Answers that were TEMP because the store could not answer.', s.storeErrors);
  counter('smmapd_connections_total', 'Connections accepted and served.', s.connectionsOpened);
  head('smmapd_connections_open', 'gauge', 'Connections open now.');
  out.push(`smmapd_connections_open ${Math.max(0, s.connectionsOpened - s.connectionsClosed)}`);
  counter('smmapd_connections_refused_total', 'Connections refused past smmapd_max_connections.', s.connectionsRefused);
  counter('smmapd_protocol_errors_total', 'Connections closed for a malformed request.', s.protocolErrors);
  head('smmapd_policy_actions_total', 'counter', 'Policy service (smmapd --policy) replies by kind.');
  for (const [k, v] of Object.entries(s.policyActions).sort()) out.push(`smmapd_policy_actions_total{kind="${esc(k)}"} ${fmt(v)}`);
  head('smmapd_workers', 'gauge', 'Processes whose figures are summed here.');
  out.push(`smmapd_workers ${x.workers}`);
  head('smmapd_process_start_time_seconds', 'gauge', 'Start time of the serving process since the Unix epoch, seconds.');
  out.push(`smmapd_process_start_time_seconds ${x.startTime}`);
  return `${out.join('\n')}\n`;
}
