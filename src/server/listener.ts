// Serving on listening sockets, for every model that listens (roles.ts picks which): bind,
// admit or refuse each connection (smmapd_allow_from, smmapd_max_connections, descriptors),
// serve it, and secure our unix socket files (serveOn). runSingle is the one-process
// listener (smmapd_workers = 1, systemd Accept=no); a cluster worker (worker.ts) serves with
// serveOn too, and the primary (primary.ts) reuses the reload helpers here.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { restartOnlyChanges, type Config } from '../config';
import { LogRateLimiter, type Logger } from '../log';
import { Lifecycle, type LifecycleLimits } from './lifecycle';
import { describeSpec, describeSpecs, type ListenSpec } from '../listen-spec';
import { endGently } from './connection';
import { dropPrivileges } from './privileges';
import { formatPeer, peerOf, type Peer } from './peer';
import { reloadService, type Service } from './service';
import type { MetricsEndpoint } from './metrics-http';
import type { ProcessShell } from './shell';
import { clearStaleSocket, UnixSocketFile } from './unix-socket';

export { parseListenSpec, ListenSpecError, type ListenSpec } from '../listen-spec';

/** The kernel's queue of connections not yet accepted (capped by net.core.somaxconn). */
export const LISTEN_BACKLOG = 511;
/** How long a client over the connection limit may take to send the request it is refused. */
const REFUSAL_WAIT_MS = 5000;
/** Accept failures and refusals: the first few lines per window, then a count. */
const LISTENER_LOG_WINDOW_MS = 60_000;
const REFUSAL_LOG_BURST = 5;
/** Descriptors kept from client connections: the store, the log, IPC, refusals in progress. */
const FD_RESERVE = 64;

/** A listen address that cannot be bound: the process cannot serve (EX_TEMPFAIL), nothing to retry. */
export class BindError extends Error {
  override readonly name = 'BindError';
}

const BIND_REASONS: Record<string, string> = {
  EADDRINUSE: 'address in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this host',
  ENOENT: 'no such directory',
};

function bindError(spec: ListenSpec, e: NodeJS.ErrnoException): BindError {
  const reason = (e.code !== undefined ? BIND_REASONS[e.code] : undefined) ?? e.message;
  return new BindError(`cannot listen on ${describeSpec(spec)}: ${reason}${e.code !== undefined ? ` (${e.code})` : ''}`);
}

function listen(server: net.Server, spec: ListenSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (e: NodeJS.ErrnoException): void => reject(bindError(spec, e));
    server.once('error', fail);
    const done = (): void => {
      server.off('error', fail);
      resolve();
    };
    if (spec.kind === 'unix') server.listen({ path: spec.path, backlog: LISTEN_BACKLOG }, done);
    else if (spec.kind === 'fd') server.listen({ fd: spec.fd }, done);
    else server.listen({ host: spec.host, port: spec.port, backlog: LISTEN_BACKLOG, ipv6Only: false }, done);
  });
}

/** What the owner of the servers learns of each connection (-U/-T accounting). */
export interface ConnectionHooks {
  opened(): void;
  closed(): void;
}

/**
 * Over `smmapd_max_connections`: refuse cleanly. Closing at once would leave the client
 * with a lost connection mid-request; instead its first request gets a TEMP reply (Postfix:
 * 451 4.3.0, try again later), then we close our side. Bounded: REFUSAL_WAIT_MS for that request.
 */
function refuse(sock: net.Socket, reply: string): void {
  sock.on('error', () => sock.destroy());
  const t = setTimeout(() => sock.destroy(), REFUSAL_WAIT_MS);
  t.unref();
  let cancelLinger = (): void => undefined;
  sock.once('data', () => {
    cancelLinger = endGently(sock, reply); // as a Connection ends: read and drop until the client closes
  });
  sock.once('close', () => {
    clearTimeout(t);
    cancelLinger();
  });
}

/**
 * Out of descriptors, libuv closes the connections it cannot take (it keeps a spare
 * descriptor for that) and reports EMFILE per attempt: one line says so, then a count per
 * window, so that the log neither floods nor stays silent while clients are turned away.
 */
function acceptFailureLog(log: Logger): (spec: ListenSpec, e: NodeJS.ErrnoException) => void {
  const limiter = new LogRateLimiter(1, LISTENER_LOG_WINDOW_MS, (what, n) =>
    log.warning(`${what}: ${n} more connection(s) closed unserved in the last ${LISTENER_LOG_WINDOW_MS / 1000} s`),
  );
  return (spec, e) => {
    const fds = e.code === 'EMFILE' || e.code === 'ENFILE';
    const what = fds ? `out of file descriptors (${e.code}) accepting on ${describeSpec(spec)}` : `accept on ${describeSpec(spec)} failed: ${e.message}`;
    if (limiter.allow(what)) log.warning(fds ? `${what}: closing new connections until some are free` : what);
  };
}

/** RLIMIT_NOFILE's soft limit (Linux /proc), or null where it cannot be read. */
function openFileLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * The connections one process takes at once: smmapd_max_connections, or fewer when the
 * descriptor limit would run out first. Past it a client is refused with a TEMP reply (it
 * knows to retry) instead of running out of descriptors, where libuv can only close
 * connections unanswered. The refusals are logged a few per window, then counted.
 */
function admission(service: Service): (sock: net.Socket, peer: Peer, spec: ListenSpec) => boolean {
  const fds = openFileLimit();
  const refusals = new LogRateLimiter(REFUSAL_LOG_BURST, LISTENER_LOG_WINDOW_MS, (what, n) =>
    service.log.warning(`${what}: ${n} more client(s) refused in the last ${LISTENER_LOG_WINDOW_MS / 1000} s`),
  );
  const notAllowed = refusedPeers(service.log);
  return (sock, peer, spec) => {
    // smmapd_allow_from: a unix socket's clients are whoever its mode and owner let in
    if (sock.remoteAddress !== undefined && !service.cfg.allowFrom.allows(sock.remoteAddress)) {
      notAllowed(sock.remoteAddress, describeSpec(spec));
      service.refused('not allowed');
      sock.destroy();
      return false;
    }
    const configured = service.cfg.maxConnections;
    const byFds = fds !== null && fds - FD_RESERVE < configured ? Math.max(1, fds - FD_RESERVE) : null;
    const limit = byFds ?? configured;
    if (service.sessions.size < limit) return true;
    const what = byFds !== null ? `connection limit (${limit}) reached (file descriptor limit (${fds}))` : `connection limit (${limit}) reached`;
    if (refusals.allow(what)) service.log.warning(`${what}: refusing ${formatPeer(peer)}`);
    refuse(sock, service.refusal(spec.proto)); // in the connection's protocol (socketmap or policy)
    return false;
  };
}

/**
 * A peer smmapd_allow_from does not list: closed at once, without a word to it; the log says
 * so a few times per address and window, then counts (whoever can connect can make these).
 */
export function refusedPeers(log: Logger): (address: string, where: string) => void {
  const known = refusalLogs.get(log);
  if (known !== undefined) return known;
  const limiter = new LogRateLimiter(REFUSAL_LOG_BURST, LISTENER_LOG_WINDOW_MS, (addr, n) =>
    log.warning(`refused ${addr}: ${n} more connection(s) not allowed by smmapd_allow_from in the last ${LISTENER_LOG_WINDOW_MS / 1000} s`),
  );
  const say = (address: string, where: string): void => {
    if (limiter.allow(address)) log.warning(`refused ${address} on ${where}: not allowed by smmapd_allow_from`);
  };
  refusalLogs.set(log, say);
  return say;
}
/** One window per process (its logger), whichever listener refused: socketmap, policy or metrics. */
const refusalLogs = new WeakMap<Logger, (address: string, where: string) => void>();

export interface Listening {
  readonly servers: net.Server[];
  /** The unix socket files we bound (empty where the primary or a supervisor owns them). */
  readonly files: UnixSocketFile[];
}

/** Accept and serve on every spec until told to stop. Throws BindError when one cannot be bound. */
export async function serveOn(specs: ListenSpec[], service: Service, hooks: ConnectionHooks, ownsSockets: boolean): Promise<Listening> {
  const servers: net.Server[] = [];
  const files: UnixSocketFile[] = [];
  const acceptFailed = acceptFailureLog(service.log);
  const admit = admission(service);
  for (const spec of specs) {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: false });
    server.on('connection', (sock: net.Socket) => {
      const peer = peerOf(sock); // now: a client that resets has no address later
      if (!admit(sock, peer, spec)) return;
      hooks.opened();
      void service.serve(sock, sock, peer, spec.proto).done.then(() => hooks.closed());
    });
    if (spec.kind === 'unix' && ownsSockets) await clearStaleSocket(spec.path);
    await listen(server, spec);
    // Once listening, an error is a failed accept (the server goes on listening).
    server.on('error', (e: NodeJS.ErrnoException) => acceptFailed(spec, e));
    if (spec.kind === 'unix' && ownsSockets) {
      const file = new UnixSocketFile(spec.path);
      if (!file.secure(service.cfg, service.log)) throw new BindError(`cannot set the mode and owner of ${spec.path}`);
      files.push(file);
    }
    servers.push(server);
  }
  return { servers, files };
}

export function closeAll(servers: readonly net.Server[]): void {
  for (const s of servers) s.close();
}

/** Did a reload change what the unix sockets' mode and owner should be? */
export function socketSettingsChanged(a: Config, b: Config): boolean {
  return a.unixSocketMode !== b.unixSocketMode || a.unixSocketOwner !== b.unixSocketOwner || a.unixSocketGroup !== b.unixSocketGroup;
}

/** After a reload: every changed option that only a restart applies, by name (the running value stays). */
export function logRestartOnly(before: Config, after: Config, log: Logger): void {
  for (const name of restartOnlyChanges(before, after)) log.warning(`reload: ${name} changed; it takes effect at the next restart`);
}

/** SIGHUP: reload; the unix sockets get the new mode and owner (only ours, never through a link). */
function reload(service: Service, files: readonly UnixSocketFile[], started: Config): void {
  const before = service.cfg;
  if (!reloadService(service)) return;
  logRestartOnly(started, service.cfg, service.log);
  if (!socketSettingsChanged(before, service.cfg)) return;
  for (const f of files) f.secure(service.cfg, service.log);
}

/** One process: listens, serves, counts. Also serves systemd's Accept=no sockets (kind 'fd'). */
export async function runSingle(specs: ListenSpec[], service: Service, limits: LifecycleLimits, shell: ProcessShell): Promise<void> {
  shell.useService(service);
  let servers: net.Server[] = [];
  const stop = (why: string): void => shell.drain(why, () => closeAll(servers), service.cfg.shutdownTimeoutMs);
  const life = new Lifecycle(limits, () => closeAll(servers), stop);
  const listening = await serveOn(specs, service, { opened: () => life.opened(), closed: () => life.closed() }, true);
  servers = listening.servers;
  dropPrivileges(service.cfg, service.log, true);
  const started = service.cfg;
  shell.control({ stop, reload: () => reload(service, listening.files, started) });
  service.log.notice(`listening on ${describeSpecs(specs)}`);
  if (service.cfg.metricsListen !== '') guardMetrics((require('./metrics-http') as typeof import('./metrics-http')).setupMetrics('single', service.cfg, service.log, service.enableMetrics()), () => service.cfg, service.log);
}

/**
 * smmapd_allow_from for the metrics listener as well: a peer it does not list is closed
 * before the HTTP server reads a byte, and counted by the process that serves it.
 */
export function guardMetrics(endpoint: MetricsEndpoint | null, cfg: () => Config, log: Logger): void {
  if (!endpoint) return;
  const notAllowed = refusedPeers(log);
  const where = `${cfg().metricsListen} (metrics)`; // the address bound at start, whatever a reload says
  endpoint.server.prependListener('connection', (sock: net.Socket) => {
    if (sock.remoteAddress === undefined || cfg().allowFrom.allows(sock.remoteAddress)) return;
    notAllowed(sock.remoteAddress, where);
    endpoint.refused('not allowed');
    sock.destroy();
  });
}
