// GET /metrics over HTTP (smmapd_metrics_listen), in the process that owns the listener: the
// single process itself, or the primary, which asks every worker for its counters over the
// cluster IPC channel at each scrape and sums them with the last figures of workers that
// have exited (so counters never go backwards when a worker is replaced).
import cluster, { type Worker } from 'node:cluster';
import http from 'node:http';
import type { Config } from '../config';
import type { Logger } from '../log';
import { emptySnapshot, renderPrometheus, sumSnapshots, type Metrics, type MetricsSnapshot } from './metrics';

/** The start time Prometheus sees: when this process started, Unix seconds. */
const START_TIME = Math.round(performance.timeOrigin / 1000);

/** How long a scrape waits for a worker's figures before it is left out of that scrape. */
const WORKER_REPLY_MS = 1000;

export class MetricsListenError extends Error {
  override readonly name = 'MetricsListenError';
}

/** `inet:HOST:PORT` (HOST may be `[v6]`). */
export function parseMetricsListen(spec: string): { host: string; port: number } {
  const m = /^inet6?:(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(spec);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) throw new MetricsListenError(`smmapd_metrics_listen wants inet:HOST:PORT, not "${spec}"`);
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

/** Serve /metrics; `collect` gives the figures at each scrape. A bind failure is logged, not fatal. */
export function startMetricsHttp(spec: string, collect: () => Promise<{ snap: MetricsSnapshot; workers: number }>, log: Logger): http.Server {
  const { host, port } = parseMetricsListen(spec);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('smmapd serves /metrics only\n');
      return;
    }
    collect().then(
      ({ snap, workers }) => {
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(req.method === 'HEAD' ? undefined : renderPrometheus(snap, { startTime: START_TIME, workers }));
      },
      (e: unknown) => {
        log.error(`metrics: ${(e as Error).message}`);
        res.writeHead(500).end();
      },
    );
  });
  server.on('error', (e) => log.error(`metrics listener ${spec}: ${e.message}`));
  server.once('listening', () => log.notice(`serving Prometheus metrics at http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`));
  server.listen({ host, port });
  server.unref();
  return server;
}

/** The one process that serves and counts. */
export function localCollector(m: Metrics): () => Promise<{ snap: MetricsSnapshot; workers: number }> {
  return () => Promise.resolve({ snap: m.snapshot(), workers: 1 });
}

type MetricsReq = { smmapd: 'metrics-request'; id: number };
type MetricsReply = { smmapd: 'metrics'; id: number; snap: MetricsSnapshot };

/** In a worker: answer the primary's metrics requests. */
export function answerMetricsRequests(m: Metrics): void {
  process.on('message', (msg: MetricsReq) => {
    if (msg?.smmapd === 'metrics-request') process.send?.({ smmapd: 'metrics', id: msg.id, snap: m.snapshot() } satisfies MetricsReply);
  });
}

/** In the primary: every scrape asks each live worker (node:cluster's own list) for its figures. */
export class ClusterMetrics {
  private readonly last = new Map<number, MetricsSnapshot>();
  /** Figures of workers that have exited. */
  private retired = emptySnapshot();
  private nextId = 1;

  constructor() {
    cluster.on('message', (w: Worker, msg: MetricsReply) => {
      if (msg?.smmapd === 'metrics' && typeof msg.snap === 'object') this.last.set(w.id, msg.snap);
    });
    cluster.on('exit', (w: Worker) => {
      const snap = this.last.get(w.id);
      if (snap) this.retired = sumSnapshots([this.retired, snap]);
      this.last.delete(w.id);
    });
  }

  private live(): Worker[] {
    return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
  }

  readonly collect = async (): Promise<{ snap: MetricsSnapshot; workers: number }> => {
    const id = this.nextId++;
    const live = this.live();
    await Promise.all(live.map((w) => new Promise<void>((resolve) => {
      const t = setTimeout(done, WORKER_REPLY_MS);
      function done(): void {
        clearTimeout(t);
        w.off('message', onMsg);
        w.off('exit', done);
        resolve();
      }
      function onMsg(msg: MetricsReply): void {
        if (msg?.smmapd === 'metrics' && msg.id === id) done();
      }
      w.on('message', onMsg);
      w.once('exit', done);
      try {
        w.send({ smmapd: 'metrics-request', id } satisfies MetricsReq);
      } catch {
        done();
      }
    })));
    // A worker that did not answer in time counts with its previous figures.
    return { snap: sumSnapshots([this.retired, ...live.map((w) => this.last.get(w.id) ?? emptySnapshot())]), workers: live.length };
  };
}

/**
 * The one hook each listener role calls at start: the primary serves the sum of its workers,
 * a worker answers the primary, a process alone serves its own figures. Nothing when
 * smmapd_metrics_listen is not set.
 */
export function setupMetrics(role: 'primary' | 'worker' | 'single', cfg: Config, log: Logger, metrics: Metrics | null): http.Server | null {
  if (cfg.metricsListen === '') return null;
  if (role === 'worker') {
    if (metrics) answerMetricsRequests(metrics);
  } else if (role === 'primary') {
    return startMetricsHttp(cfg.metricsListen, new ClusterMetrics().collect, log);
  } else if (metrics) {
    return startMetricsHttp(cfg.metricsListen, localCollector(metrics), log);
  }
  return null;
}
