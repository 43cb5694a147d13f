// What every process model serves with: the configuration, the store and the directory maps,
// the answer caches, the logger, the metrics counters, and the set of open sessions (a drain
// waits for them to end: idle(); a reload swaps what they answer from: reload()).
import type { Readable, Writable } from 'node:stream';
import { loadConfig, type Config } from '../config';
import { encodeNetstring } from '../core/netstring';
import { replyPayload, TOO_MANY_CONNECTIONS } from '../core/reply';
import { auditField, LogRateLimiter, type Logger } from '../log';
import { checkOptions } from '../check-options';
import { configureBusyPoll, PRESSURE_FILE } from '../busy-poll';
import { openStore, type Log } from '../store/registry';
import type { MailboxStore } from '../store/store';
import { CyrusAnswers } from './answers';
import { closeMaps, openMaps, type MapAnswers } from './map-answers';
import { Metrics, type MetricsProbes } from './metrics';
import type { Peer } from './peer';
import { PolicyAnswers } from './policy-answers';
import { PolicySession, type PolicyContext } from './policy-session';
import type { Protocol } from '../listen-spec';
import { MapRouter } from './router';
import { SocketmapSession, type SocketmapContext } from './session';

export interface ServiceOptions {
  readonly configPath: string | undefined;
  readonly skipPlus: boolean;
  /** smmapd --policy: every connection speaks Postfix's policy delegation protocol, unless its listener says otherwise. */
  readonly policy?: boolean;
}

/** Why a client was turned away before its first request (the metrics branch labels the count by it). */
export type RefusalReason = 'connection limit' | 'not allowed';

/** Protocol-error lines logged per peer address per minute; the rest are counted in one line. */
export const PROTOCOL_ERROR_LOG_BURST = 5;
export const PROTOCOL_ERROR_LOG_WINDOW_MS = 60_000;
/** Lines per unconfigured map name per window (PROTOCOL_ERROR_LOG_WINDOW_MS). */
const UNCONFIGURED_LOG_BURST = 3;
/** After a reload, how much longer than a lookup's own bound the old store and maps stay open. */
const RELOAD_CLOSE_GRACE_MS = 1000;

export class Service {
  private store: MailboxStore;
  /** smmapd_map_NAME tables, null when none is configured. */
  private maps: Map<string, MapAnswers> | null;
  /** Outlives reloads: the count of lines left out belongs to the window, not the configuration. */
  private readonly protocolErrors: LogRateLimiter;
  /** The same bound for what the directories say at request rate (per map and host). */
  private readonly directoryErrors: LogRateLimiter;
  /** Requests for a map name neither configured nor in smmapd_verify_maps: a few lines per name per minute. */
  private readonly unconfigured: LogRateLimiter;
  /** One object shared by every session; reload() replaces its fields in place. */
  private readonly ctx: SocketmapContext & PolicyContext;
  readonly sessions = new Set<SocketmapSession | PolicySession>();
  /** Who waits for the last open session to end (a drain: idle()). */
  private readonly idleWaiters: Array<() => void> = [];
  /**
   * Counters for /metrics: only the listener models turn them on (enableMetrics); a process
   * that lives one connection (master, inetd) has nothing to serve them from.
   */
  private metricsOn: Metrics | null = null;

  constructor(
    public cfg: Config,
    private readonly opts: ServiceOptions,
    readonly log: Logger,
  ) {
    this.protocolErrors = new LogRateLimiter(PROTOCOL_ERROR_LOG_BURST, PROTOCOL_ERROR_LOG_WINDOW_MS, (addr, n) =>
      this.log.notice(`protocol errors from ${addr}: ${n} more in the last ${PROTOCOL_ERROR_LOG_WINDOW_MS / 1000} s not logged`),
    );
    this.directoryErrors = new LogRateLimiter(PROTOCOL_ERROR_LOG_BURST, PROTOCOL_ERROR_LOG_WINDOW_MS, (what, n) =>
      this.log.error(`${what}: ${n} more in the last ${PROTOCOL_ERROR_LOG_WINDOW_MS / 1000} s not logged`),
    );
    this.store = openStore(cfg, this.storeLog);
    this.maps = openMaps(cfg, this.storeLog);
    this.unconfigured = new LogRateLimiter(UNCONFIGURED_LOG_BURST, PROTOCOL_ERROR_LOG_WINDOW_MS, (name, n) =>
      this.log.notice(`map ${auditField(name, 64)}: ${n} more requests answered TEMP in the last ${PROTOCOL_ERROR_LOG_WINDOW_MS / 1000} s not logged`),
    );
    this.ctx = this.makeContext();
    this.configureBusyPoll();
  }

  /** smmapd_busy_poll for this process (at start and on reload). */
  private configureBusyPoll(): void {
    if (!configureBusyPoll(this.cfg.busyPollUs)) {
      this.log.info(`smmapd_busy_poll: ${PRESSURE_FILE} cannot be read (no pressure stall information): the event loop never busy-polls`);
    }
  }

  /**
   * What the store and the directory maps say, at the level they ask for (errors by
   * default); lines that requests can cause carry a key and are bounded per key.
   */
  private readonly storeLog: Log = (msg, level = 'error', limit) => {
    if (limit === undefined || this.directoryErrors.allow(limit)) this.log[level](msg);
  };

  private makeContext(): SocketmapContext & PolicyContext {
    const cfg = this.cfg;
    const cyrus = new CyrusAnswers(this.store, checkOptions(cfg, this.opts.skipPlus), {
      size: cfg.cacheSize,
      positiveTtlMs: cfg.cacheTtlMs,
      negativeTtlMs: cfg.negativeCacheTtlMs,
    }, this.metrics?.cache);
    const router = new MapRouter({
      cyrus,
      maps: this.maps,
      verifyMaps: cfg.verifyMaps === null ? null : new Set(cfg.verifyMaps),
      onUnconfigured: (name) => {
        if (this.unconfigured.allow(name)) {
          this.log.warning(`map ${auditField(name, 64)} is neither configured (smmapd_map_*) nor listed in smmapd_verify_maps: answered TEMP`);
        }
      },
      metrics: this.metrics,
    });
    return {
      router,
      maxRequest: cfg.maxRequest,
      idleTimeoutMs: cfg.timeout * 1000,
      log: this.log,
      audit: cfg.audit,
      protocolErrors: this.protocolErrors,
      // any listener may speak the policy protocol (smmapd_policy_listen, a systemd `policy` socket)
      policy: new PolicyAnswers(this.store, checkOptions(cfg, this.opts.skipPlus), cfg.policy),
      metrics: this.metrics,
    };
  }

  /** What a scrape reads of the maps and store open now (they change on reload). */
  private readonly probes: MetricsProbes = {
    directories: () =>
      [...(this.maps?.values() ?? [])].flatMap((m) => (m.table.hostStates?.() ?? []).map((h) => ({ map: m.name, host: h.name, up: h.failures === 0 }))),
    lastSync: () => this.store.lastSync?.() ?? null,
  };

  /** What a connection speaks when its listener does not say: --policy or socketmap. */
  get defaultProtocol(): Protocol {
    return this.opts.policy === true ? 'policy' : 'socketmap';
  }

  /** Serve one connection; resolves when it is over. */
  serve(input: Readable, output: Writable, peer: Peer, proto: Protocol = this.defaultProtocol): SocketmapSession | PolicySession {
    const s = proto === 'policy' ? new PolicySession(input, output, peer, this.ctx) : new SocketmapSession(input, output, peer, this.ctx);
    this.sessions.add(s);
    const m = this.metrics;
    if (m) m.connectionsOpened++;
    void s.done.then(() => {
      this.sessions.delete(s);
      if (m) m.connectionsClosed++;
      if (this.sessions.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    });
    return s;
  }

  /** Resolves once no session is open (at once when none is): what a drain waits for. */
  idle(): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  get metrics(): Metrics | null {
    return this.metricsOn;
  }

  /** Start counting (smmapd_metrics_listen in a listener model); the cache starts empty anyway. */
  enableMetrics(): Metrics {
    if (this.metricsOn === null) {
      this.metricsOn = new Metrics(this.probes);
      this.metricsOn.setMaps(this.cfg.maps.map((s) => s.name));
      Object.assign(this.ctx, this.makeContext());
    }
    return this.metricsOn;
  }

  /** What a client past smmapd_max_connections gets to its first request, in its protocol. */
  refusal(proto: Protocol = this.defaultProtocol): string {
    this.refused('connection limit');
    return proto === 'policy' ? `action=DEFER_IF_PERMIT ${TOO_MANY_CONNECTIONS.text}\n\n` : encodeNetstring(replyPayload(TOO_MANY_CONNECTIONS));
  }

  /** Count a client turned away before its first request (the one counting hook for every refusal). */
  refused(reason: RefusalReason): void {
    const m = this.metrics;
    if (m) m.refused.set(reason, (m.refused.get(reason) ?? 0) + 1);
  }

  /** SIGTERM: every session answers what it has and closes. */
  drainAll(): void {
    for (const s of this.sessions) s.drain();
  }

  /**
   * SIGHUP: re-read the configuration and reopen the store without dropping connections:
   * every session shares one context object, so open ones answer from the new store at
   * their next request. The old store closes once lookups in flight on it are surely over.
   */
  reload(): void {
    // Both may throw (bad file, unreadable CA file): nothing changes until both succeeded.
    const cfg = loadConfig(this.opts.configPath);
    const store = openStore(cfg, this.storeLog);
    let maps;
    try {
      maps = openMaps(cfg, this.storeLog);
    } catch (e) {
      void store.close();
      throw e;
    }
    const old = this.store;
    const oldMaps = this.maps;
    this.cfg = cfg;
    this.store = store;
    this.maps = maps;
    this.metrics?.setMaps(cfg.maps.map((s) => s.name));
    Object.assign(this.ctx, this.makeContext());
    this.configureBusyPoll();
    setTimeout(() => closeMaps(oldMaps), cfg.mapTimeoutMs + RELOAD_CLOSE_GRACE_MS).unref();
    this.log.configure({ threshold: cfg.logLevel, audit: cfg.audit, auditLevel: cfg.auditLevel });
    this.log.reopen(); // a log file moved away (logrotate with a SIGHUP postrotate) is opened anew
    setTimeout(() => void old.close(), cfg.imap.timeoutMs + RELOAD_CLOSE_GRACE_MS).unref();
    this.log.notice(`reloaded ${cfg.path || 'built-in defaults'}; store ${cfg.backend === 'sqlite' ? cfg.store : cfg.imap.server}`);
  }

  async close(): Promise<void> {
    this.protocolErrors.flush();
    this.directoryErrors.flush();
    this.unconfigured.flush();
    closeMaps(this.maps);
    await this.store.close();
  }
}

/** SIGHUP in any process model: reload, or keep running as before when the new configuration is bad. */
export function reloadService(service: Service): boolean {
  try {
    service.reload();
    service.metrics?.reloaded(true);
    return true;
  } catch (e) {
    service.log.error(`reload failed, keeping the running configuration: ${(e as Error).message}`);
    service.metrics?.reloaded(false);
    return false;
  }
}
