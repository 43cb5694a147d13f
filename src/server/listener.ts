// The --listen model: smmapd is its own listener on TCP and unix sockets, many connections
// at once. With `smmapd_workers` > 1 (default: one per CPU) a primary process forks workers
// that share the listening sockets (node:cluster); the primary keeps the -U/-T accounting
// and the signals, the workers serve.
import cluster, { type Worker } from 'node:cluster';
import { chmodSync, chownSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { loadConfig, type Config } from '../config';
import { encodeNetstring } from '../core/netstring';
import { replyPayload, TOO_MANY_CONNECTIONS } from '../core/reply';
import type { Logger } from '../log';
import { Lifecycle, type LifecycleLimits } from './lifecycle';
import { peerOf, reloadService, type Service } from './service';
import { lookupGroup, lookupUser } from './users';

export type ListenSpec =
  | { kind: 'inet'; host: string; port: number }
  | { kind: 'unix'; path: string }
  /** A listening socket inherited from a supervisor (systemd Accept=no); `name` from LISTEN_FDNAMES. */
  | { kind: 'fd'; fd: number; name: string };

export class ListenSpecError extends Error {
  override readonly name = 'ListenSpecError';
}

/** `inet:HOST:PORT` (HOST may be `[v6]` or `*`), `unix:PATH`. */
export function parseListenSpec(spec: string): ListenSpec {
  if (spec.startsWith('unix:') && spec.length > 5) return { kind: 'unix', path: spec.slice(5) };
  const m = /^inet6?:(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(spec);
  if (m) {
    const port = Number(m[3]);
    if (port < 1 || port > 65535) throw new ListenSpecError(`bad port in --listen ${spec}`);
    const host = m[1] ?? m[2]!;
    return { kind: 'inet', host: host === '*' || host === '' ? '::' : host, port };
  }
  throw new ListenSpecError(`--listen wants inet:HOST:PORT or unix:PATH, not "${spec}"`);
}

function describe(s: ListenSpec): string {
  switch (s.kind) {
    case 'unix':
      return `unix:${s.path}`;
    case 'inet':
      return `inet:${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`;
    case 'fd':
      return `fd ${s.fd}${s.name !== '' ? ` (${s.name})` : ''}`;
  }
}

/** A unix socket left by a dead daemon is removed; one that answers is in use. */
async function clearStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new ListenSpecError(`${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
  if (alive) throw new ListenSpecError(`${path} is in use by another process`);
  unlinkSync(path);
}

function secureSocket(path: string, cfg: Config): void {
  chmodSync(path, cfg.unixSocketMode);
  if (cfg.unixSocketOwner !== '' || cfg.unixSocketGroup !== '') {
    const uid = cfg.unixSocketOwner !== '' ? lookupUser(cfg.unixSocketOwner) : -1;
    const gid = cfg.unixSocketGroup !== '' ? lookupGroup(cfg.unixSocketGroup) : -1;
    chownSync(path, uid, gid);
  }
}

function listen(server: net.Server, spec: ListenSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (spec.kind === 'unix') server.listen({ path: spec.path, backlog: 511 }, done);
    else if (spec.kind === 'fd') server.listen({ fd: spec.fd }, done);
    else server.listen({ host: spec.host, port: spec.port, backlog: 511, ipv6Only: false }, done);
  });
}

/** Messages between the primary and its workers. */
type WorkerMsg = { smmapd: 'opened' } | { smmapd: 'closed' } | { smmapd: 'ready' };
type PrimaryMsg = { smmapd: 'stop-accepting' } | { smmapd: 'shutdown' };

interface Hooks {
  opened(): void;
  closed(): void;
}

/** The reply a client over the connection limit gets to its first request. */
const REFUSAL = encodeNetstring(replyPayload(TOO_MANY_CONNECTIONS));

/**
 * Over `smmapd_max_connections`: refuse cleanly. Closing at once would leave the client
 * with a lost connection mid-request; instead its first request gets a TEMP reply (Postfix:
 * 451 4.3.0, try again later), then we close our side. Bounded: 5 s for that request.
 */
function refuse(sock: net.Socket): void {
  sock.on('error', () => undefined);
  const t = setTimeout(() => sock.destroy(), 5000);
  t.unref();
  sock.once('data', () => {
    sock.end(REFUSAL);
    sock.resume(); // read and drop the rest until the client closes
  });
  sock.once('close', () => clearTimeout(t));
}

/** Accept and serve on every spec until told to stop; returns the servers. */
async function serveOn(specs: ListenSpec[], service: Service, hooks: Hooks, ownsSockets: boolean): Promise<net.Server[]> {
  const servers: net.Server[] = [];
  for (const spec of specs) {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: false });
    server.on('connection', (sock: net.Socket) => {
      if (service.sessions.size >= service.cfg.maxConnections) {
        service.log.warning(`connection limit (${service.cfg.maxConnections}) reached: refusing ${peerOf(sock)}`);
        refuse(sock);
        return;
      }
      hooks.opened();
      void service.serve(sock, sock, peerOf(sock)).done.then(() => hooks.closed());
    });
    server.on('error', (e) => service.log.error(`listener ${describe(spec)}: ${e.message}`));
    if (spec.kind === 'unix' && ownsSockets) await clearStaleSocket(spec.path);
    await listen(server, spec);
    if (spec.kind === 'unix' && ownsSockets) secureSocket(spec.path, service.cfg);
    servers.push(server);
  }
  return servers;
}

function closeAll(servers: net.Server[]): void {
  for (const s of servers) s.close();
}

let shuttingDown = false;

/** Drain, then exit 0; forced after the shutdown bound. */
function shutdown(service: Service, servers: net.Server[], why: string): void {
  if (shuttingDown) return;
  shuttingDown = true;
  service.log.notice(`shutting down: ${why}`);
  closeAll(servers);
  service.drainAll();
  const force = setTimeout(() => {
    service.log.warning(`${service.sessions.size} connection(s) still open after ${service.cfg.shutdownTimeoutMs} ms; closing them`);
    void service.log.close().finally(() => process.exit(0));
  }, service.cfg.shutdownTimeoutMs);
  force.unref();
  const check = (): void => {
    if (service.sessions.size === 0) void Promise.allSettled([service.close(), service.log.close()]).finally(() => process.exit(0));
    else setTimeout(check, 20).unref();
  };
  check();
}

function reload(service: Service, specs: ListenSpec[] = []): void {
  if (!reloadService(service)) return;
  // The new configuration may change the unix sockets' mode or owner.
  for (const s of specs) {
    if (s.kind !== 'unix') continue;
    try {
      secureSocket(s.path, service.cfg);
    } catch (e) {
      service.log.error(`cannot set owner or mode of ${s.path}: ${(e as Error).message}`);
    }
  }
}

/** One process: listens, serves, counts. Also serves systemd's Accept=no sockets (kind 'fd'). */
export async function runSingle(specs: ListenSpec[], service: Service, limits: LifecycleLimits): Promise<void> {
  let servers: net.Server[] = [];
  const life = new Lifecycle(limits, () => closeAll(servers), (why) => shutdown(service, servers, why));
  servers = await serveOn(specs, service, { opened: () => life.opened(), closed: () => life.closed() }, true);
  process.on('SIGTERM', () => shutdown(service, servers, 'SIGTERM'));
  process.on('SIGINT', () => shutdown(service, servers, 'SIGINT'));
  process.on('SIGHUP', () => reload(service, specs));
  service.log.notice(`listening on ${specs.map(describe).join(', ')}`);
}

/** A cluster worker: serves, reports each connection to the primary, obeys it. */
async function runWorker(specs: ListenSpec[], service: Service): Promise<void> {
  const send = (m: WorkerMsg): void => void process.send?.(m);
  const servers = await serveOn(specs, service, { opened: () => send({ smmapd: 'opened' }), closed: () => send({ smmapd: 'closed' }) }, false);
  process.on('message', (m: PrimaryMsg) => {
    if (m?.smmapd === 'stop-accepting') closeAll(servers);
    else if (m?.smmapd === 'shutdown') shutdown(service, servers, 'primary asked');
  });
  // The primary owns the signals: SIGTERM/SIGINT to the process group must not kill us mid-reply.
  process.on('SIGTERM', () => undefined);
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => reload(service));
  send({ smmapd: 'ready' });
}

/** The primary: forks workers, keeps them alive, relays signals, counts -U/-T. */
async function runPrimary(specs: ListenSpec[], cfg: Config, log: Logger, limits: LifecycleLimits): Promise<void> {
  for (const s of specs) if (s.kind === 'unix') await clearStaleSocket(s.path);
  let stopping = false;
  const workers = new Set<Worker>();
  const tell = (m: PrimaryMsg): void => {
    for (const w of workers) if (w.isConnected()) w.send(m);
  };
  const exitAll = (why: string): void => {
    if (stopping) return;
    stopping = true;
    log.notice(`shutting down: ${why}`);
    tell({ smmapd: 'shutdown' });
    setTimeout(() => process.exit(0), cfg.shutdownTimeoutMs + 1000).unref();
    if (workers.size === 0) process.exit(0);
  };
  const life = new Lifecycle(limits, () => tell({ smmapd: 'stop-accepting' }), exitAll);
  let secured = false;
  let announced = false;
  // A worker takes SIGHUP only once it says it is ready: before its handler is installed the
  // signal would kill it. One that is still starting gets the reload when it is ready.
  const ready = new Set<Worker>();
  const reloadWhenReady = new Set<Worker>();
  const fork = (): void => {
    const w = cluster.fork();
    workers.add(w);
    // Connections this worker reported open: if it dies they are gone, and -U/-T must know.
    let open = 0;
    w.on('message', (m: WorkerMsg) => {
      if (m?.smmapd === 'opened') {
        open++;
        life.opened();
      } else if (m?.smmapd === 'closed') {
        open--;
        life.closed();
      } else if (m?.smmapd === 'ready') {
        ready.add(w);
        if (reloadWhenReady.delete(w)) w.process.kill('SIGHUP');
        // a replacement forked after -U was reached must not take new connections
        if (!life.accepting) w.send({ smmapd: 'stop-accepting' } satisfies PrimaryMsg);
        if (!secured) {
          secured = true; // the socket files exist once one worker listens
          for (const s of specs) if (s.kind === 'unix') secureSocket(s.path, cfg);
        }
        if (!announced && ready.size >= cfg.workers) {
          announced = true;
          log.notice(`listening on ${specs.map(describe).join(', ')} with ${cfg.workers} workers`);
        }
      }
    });
    w.on('exit', (code, signal) => {
      workers.delete(w);
      ready.delete(w);
      reloadWhenReady.delete(w);
      for (; open > 0; open--) life.closed();
      if (stopping) {
        if (workers.size === 0) process.exit(0);
        return;
      }
      log.error(`worker ${w.process.pid} exited (${signal ?? code}); starting another`);
      setTimeout(fork, 200);
    });
  };
  for (let i = 0; i < cfg.workers; i++) fork();
  process.on('SIGTERM', () => exitAll('SIGTERM'));
  process.on('SIGINT', () => exitAll('SIGINT'));
  process.on('SIGHUP', () => {
    for (const w of workers) {
      if (ready.has(w)) w.process.kill('SIGHUP');
      else reloadWhenReady.add(w);
    }
    // The workers reload for themselves; the primary owns the unix sockets' mode and owner.
    try {
      const next = loadConfig(cfg.path === '' ? undefined : cfg.path);
      log.configure({ threshold: next.logLevel, audit: next.audit, auditLevel: next.auditLevel });
      for (const s of specs) if (s.kind === 'unix') secureSocket(s.path, next);
    } catch (e) {
      log.error(`reload failed in the primary: ${(e as Error).message}`);
    }
  });
}

export interface ListenerDeps {
  readonly cfg: Config;
  readonly log: Logger;
  /** Built only where connections are served (not in the primary). */
  readonly service: () => Service;
}

export async function runListener(specs: ListenSpec[], deps: ListenerDeps, limits: LifecycleLimits): Promise<void> {
  if (cluster.isWorker) return runWorker(specs, deps.service());
  if (deps.cfg.workers > 1) {
    cluster.setupPrimary({ silent: false });
    return runPrimary(specs, deps.cfg, deps.log, limits);
  }
  return runSingle(specs, deps.service(), limits);
}
