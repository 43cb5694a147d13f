// GET /metrics over HTTP (smmapd_metrics_listen), in the process that owns the listener: the
// single process itself, or the primary. prom-client renders the text, collects each
// process's own figures (process_*, nodejs_*) and merges processes (AggregatorRegistry's
// aggregate). Loaded only when metrics are configured.
//
// With workers the primary asks every live worker for its figures at each scrape (over the
// cluster channel). smmapd_* counters are summed over the processes; process_* and nodejs_*
// are per process, labelled process="primary" / "workerN" (N a slot that a replacement
// takes over, so worker churn adds no series). A worker that exits is forgotten, except
// that its last reported counters are added into one retired total (bounded: its labels
// are the configuration's): dropping them would make the daemon's sums go down, which
// rate() reads as a reset to zero and turns into a spike.
import cluster, { type Worker } from 'node:cluster';
import http from 'node:http';
import type net from 'node:net';
import { AggregatorRegistry, collectDefaultMetrics, Registry } from 'prom-client';
import type { Config } from '../config';
import type { Logger } from '../log';
import { VERSION } from '../version';
import { kindOf } from './cluster-messages';
import { isMonotonic, refusedMetric, sumMetrics, type Metrics, type MetricJSON } from './metrics';

/** The start time of this process, Unix seconds. */
const START_TIME = Math.round(performance.timeOrigin / 1000);

/** How long a scrape waits for a worker's figures before it counts with its previous ones. */
const WORKER_REPLY_MS = 1000;

/**
 * The endpoint's bounds: whoever reaches the port must not hold it. Silent connections are
 * dropped after 5 s, requests must bring their headers within 5 s and be whole within 10 s
 * (checked every second), 5 s idle between requests; at most 32 connections at once (more
 * are closed as they arrive).
 */
export const HTTP_LIMITS = {
  maxConnections: 32, idleTimeoutMs: 5000, headersTimeoutMs: 5000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 5000, checkIntervalMs: 1000,
};

export class MetricsListenError extends Error {
  override readonly name = 'MetricsListenError';
}

/** `inet:HOST:PORT` (HOST may be `[v6]`). */
export function parseMetricsListen(spec: string): { host: string; port: number } {
  const m = /^inet6?:(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(spec);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) throw new MetricsListenError(`smmapd_metrics_listen wants inet:HOST:PORT, not "${spec}"`);
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}



/**
 * Event-loop lag sampling interval, ms: prom-client's default (10 ms) wakes every process 100
 * times a second, which tripled an idle daemon's CPU; lag worth alerting on is far longer.
 */
const EVENT_LOOP_SAMPLE_MS = 100;

/** This process's own figures: resident memory, open fds, CPU, start time, heap, event loop, GC. */
function processRegistry(): Registry {
  const r = new Registry();
  collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  return r;
}

async function processMetrics(r: Registry): Promise<MetricJSON[]> {
  return (await r.getMetricsAsJSON()) as unknown as MetricJSON[];
}

/** One process's own metrics, labelled with the process: kept apart, never summed. */
export function perProcess(ms: readonly MetricJSON[], proc: string): MetricJSON[] {
  return ms.map((m) => ({ ...m, aggregator: 'first', values: m.values.map((v) => ({ ...v, labels: { ...v.labels, process: proc } })) }));
}

/** What only the serving process says: the build, how many workers, when the daemon started. */
function daemonMetrics(workers: number): MetricJSON[] {
  return [
    { name: 'smmapd_build_info', help: 'The running smmapd: its version (package.json) and Node.js version.', type: 'gauge', aggregator: 'first', values: [{ value: 1, labels: { version: VERSION, nodejs: process.versions.node } }] },
    { name: 'smmapd_workers', help: 'Worker processes whose figures are summed here (1 without workers).', type: 'gauge', aggregator: 'first', values: [{ value: workers, labels: {} }] },
    { name: 'smmapd_process_start_time_seconds', help: 'When the daemon (its serving process or primary) started, Unix seconds.', type: 'gauge', aggregator: 'first', values: [{ value: START_TIME, labels: {} }] },
  ];
}

/** Merge the parts (summing smmapd_* over processes) and render Prometheus text 0.0.4. */
export function render(parts: ReadonlyArray<readonly MetricJSON[]>): Promise<string> {
  return AggregatorRegistry.aggregate(parts as MetricJSON[][]).metrics();
}

type Collect = () => Promise<string>;

/** Scrapes that arrive while one is being collected share its result. */
function coalesce(collect: Collect): Collect {
  let inFlight: Promise<string> | null = null;
  return () => {
    inFlight ??= collect().finally(() => (inFlight = null));
    return inFlight;
  };
}

/** Serve GET /metrics; `collect` gives the text at each scrape. A bind failure is logged, not fatal. */
export function startMetricsHttp(spec: string, collect: Collect, log: Logger): http.Server {
  const { host, port } = parseMetricsListen(spec);
  const L = HTTP_LIMITS;
  const scrape = coalesce(collect);
  const server = http.createServer(
    { headersTimeout: L.headersTimeoutMs, requestTimeout: L.requestTimeoutMs, keepAliveTimeout: L.keepAliveTimeoutMs, connectionsCheckingInterval: L.checkIntervalMs },
    (req, res) => {
      const refuse = (code: number, headers: Record<string, string> = {}): void => {
        // a refused request's connection is not kept: whatever else it sends is not read
        res.writeHead(code, { 'Content-Type': 'text/plain', Connection: 'close', ...headers }).end(`${http.STATUS_CODES[code]}: smmapd serves GET /metrics only\n`);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(405, { Allow: 'GET, HEAD' });
      if ((req.url ?? '').split('?')[0] !== '/metrics') return refuse(404);
      if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) return refuse(413);
      scrape().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (e: unknown) => {
          log.error(`metrics: ${(e as Error).message}`);
          if (!res.headersSent) res.writeHead(500, { Connection: 'close' }).end();
        },
      );
    },
  );
  server.maxConnections = L.maxConnections;
  // Silent connections: node's header timeout starts only with a request's first byte.
  server.on('connection', (sock: net.Socket) => sock.setTimeout(L.idleTimeoutMs, () => sock.destroy()));
  server.on('error', (e) => log.error(`metrics listener ${spec}: ${e.message}`));
  server.once('listening', () => log.notice(`serving Prometheus metrics at http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`));
  server.listen({ host, port });
  server.unref();
  return server;
}

/** The one process that serves and counts. */
export function localCollector(m: Metrics): Collect {
  const proc = processRegistry();
  return async () => render([daemonMetrics(1), m.toJSON(), perProcess(await processMetrics(proc), 'main')]);
}

type MetricsReq = { smmapd: 'metrics-request'; id: number };
/** A worker's figures: its smmapd_* counters (summed by the primary) and its own process metrics. */
type MetricsReply = { smmapd: 'metrics'; id: number; own: MetricJSON[]; proc: MetricJSON[] };

/** In a worker: answer the primary's metrics requests. */
export function answerMetricsRequests(m: Metrics): void {
  const proc = processRegistry();
  process.on('message', (msg: MetricsReq) => {
    if (kindOf(msg) !== 'metrics-request') return;
    void processMetrics(proc)
      .catch(() => [])
      .then((p) => process.send?.({ smmapd: 'metrics', id: msg.id, own: m.toJSON(), proc: p } satisfies MetricsReply));
  });
}

interface Figures {
  own: MetricJSON[];
  proc: MetricJSON[];
}

/** In the primary: every scrape asks each live worker (node:cluster's own list) for its figures. */
export class ClusterMetrics {
  /** Worker id → slot (1..): the `process` label, reused by the worker that replaces it. */
  private readonly slots = new Map<number, number>();
  /** Each live worker's last figures. */
  private readonly last = new Map<number, Figures>();
  /** The primary's own refusals (its metrics listener's smmapd_allow_from). */
  readonly refused = new Map<string, number>();
  /** Counters of workers that have exited, summed (bounded: labels from the configuration). */
  private retired: MetricJSON[] = [];
  private readonly proc = processRegistry();
  private nextId = 1;

  constructor() {
    cluster.on('fork', (w: Worker) => this.slotOf(w));
    cluster.on('message', (w: Worker, msg: MetricsReply) => {
      if (kindOf(msg) === 'metrics' && Array.isArray(msg.own) && Array.isArray(msg.proc)) this.last.set(w.id, { own: msg.own, proc: msg.proc });
    });
    cluster.on('exit', (w: Worker) => {
      const f = this.last.get(w.id);
      if (f) this.retired = sumMetrics([this.retired, f.own.filter(isMonotonic)]);
      this.last.delete(w.id);
      this.slots.delete(w.id);
    });
  }

  private slotOf(w: Worker): number {
    let s = this.slots.get(w.id);
    if (s === undefined) {
      const used = new Set(this.slots.values());
      for (s = 1; used.has(s); s++);
      this.slots.set(w.id, s);
    }
    return s;
  }

  /** What the primary holds: a bounded total per exited workers, one entry per live worker. */
  get state(): { retiredSamples: number; workers: number } {
    return { retiredSamples: this.retired.reduce((n, m) => n + m.values.length, 0), workers: this.last.size };
  }

  private live(): Worker[] {
    return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
  }

  private ask(w: Worker, id: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, WORKER_REPLY_MS);
      function done(): void {
        clearTimeout(t);
        w.off('message', onMsg);
        w.off('exit', done);
        resolve();
      }
      function onMsg(msg: MetricsReply): void {
        if (kindOf(msg) === 'metrics' && msg.id === id) done();
      }
      w.on('message', onMsg);
      w.once('exit', done);
      try {
        w.send({ smmapd: 'metrics-request', id } satisfies MetricsReq);
      } catch {
        done();
      }
    });
  }

  readonly collect = async (): Promise<string> => {
    const id = this.nextId++;
    const live = this.live();
    await Promise.all(live.map((w) => this.ask(w, id)));
    // A worker that did not answer in time counts with its previous figures.
    const parts: MetricJSON[][] = [daemonMetrics(live.length), this.retired, [refusedMetric(this.refused)], perProcess(await processMetrics(this.proc), 'primary')];
    for (const w of live) {
      const f = this.last.get(w.id);
      if (f) parts.push(f.own, perProcess(f.proc, `worker${this.slotOf(w)}`));
    }
    return render(parts);
  };
}

/**
 * The one hook each listener role calls at start: the primary serves the sum of its workers,
 * a worker answers the primary, a process alone serves its own figures. Nothing when
 * smmapd_metrics_listen is not set.
 */
export function setupMetrics(role: 'primary' | 'worker' | 'single', cfg: Config, log: Logger, metrics: Metrics | null): MetricsEndpoint | null {
  if (cfg.metricsListen === '') return null;
  if (role === 'worker') {
    if (metrics) answerMetricsRequests(metrics);
  } else if (role === 'primary') {
    const cm = new ClusterMetrics();
    return { server: startMetricsHttp(cfg.metricsListen, cm.collect, log), refused: (reason) => count(cm.refused, reason) };
  } else if (metrics) {
    return { server: startMetricsHttp(cfg.metricsListen, localCollector(metrics), log), refused: (reason) => count(metrics.refused, reason) };
  }
  return null;
}

/** The metrics listener, and where it counts a peer it turned away (smmapd_allow_from). */
export interface MetricsEndpoint {
  readonly server: http.Server;
  readonly refused: (reason: string) => void;
}

function count(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}
