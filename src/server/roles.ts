// The --listen model's roles: which one this process plays. Kept above worker.ts, primary.ts
// and listener.ts so that each of them imports only downwards. With `smmapd_workers` > 1 (default: one per
// CPU) a primary (primary.ts) forks workers (worker.ts) that share the listening sockets;
// with one, this process listens and serves itself (listener.ts runSingle).
import type { Config } from '../config';
import type { Logger } from '../log';
import type { LifecycleLimits } from './lifecycle';
import type { ListenSpec } from '../listen-spec';
import { guardMetrics, runSingle } from './listener';
import type { Service } from './service';
import type { ProcessShell } from './shell';

export interface ListenerDeps {
  readonly cfg: Config;
  readonly log: Logger;
  readonly shell: ProcessShell;
  /** Built only where connections are served (not in the primary). */
  readonly service: () => Service;
}

/** Which role this process has: a cluster worker (set by node:cluster), the primary, or alone. */
export async function runListener(specs: ListenSpec[], deps: ListenerDeps, limits: LifecycleLimits): Promise<void> {
  // node:cluster only where it is used
  // (node:cluster removes NODE_UNIQUE_ID from a worker's environment before our code runs)
  if ((require('node:cluster') as import('node:cluster').Cluster).isWorker) return (require('./worker') as typeof import('./worker')).runWorker(specs, deps.service(), deps.shell);
  let live = deps.cfg; // the primary's configuration, as its reloads leave it
  if (deps.cfg.workers > 1 && deps.cfg.metricsListen !== '') guardMetrics((require('./metrics-http') as typeof import('./metrics-http')).setupMetrics('primary', deps.cfg, deps.log, null), () => live, deps.log);
  if (deps.cfg.workers > 1) return (require('./primary') as typeof import('./primary')).runPrimary(specs, deps.cfg, deps.log, limits, deps.shell, { reloaded: (c) => (live = c) });
  return runSingle(specs, deps.service(), limits, deps.shell);
}
