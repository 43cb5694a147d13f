// Configuration in imapd.conf syntax (behaviour §5, §6). Cyrus option names keep their Cyrus
// meaning and defaults; our own options start with `smmapd_`; unknown options are ignored
// so an admin can point us at an existing imapd.conf. Every bad value is an error at start.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

import { AllowList, AllowListError } from './core/allow';
import type { VirtDomains } from './core/contract';
import { ConfigError } from './config-error';
import { MAX_REPLY } from './core/netstring';
import { defaultActions, type PolicyActions } from './core/policy-actions';
import { ListenSpecError, parseListenSpec } from './listen-spec';
import { TABLE_TYPES } from './table/registry';

export type { VirtDomains };
export type ImapTls = 'none' | 'starttls' | 'tls';
export type Backend = 'sqlite' | 'imap';
export type LogLevel = 'error' | 'warning' | 'notice' | 'info' | 'debug';

export interface ImapConfig {
  readonly server: string;
  readonly host: string;
  readonly port: number;
  readonly tls: ImapTls;
  readonly caFile: string;
  readonly user: string;
  readonly password: string;
  readonly passwordFile: string;
  /** Per-lookup deadline, milliseconds. */
  readonly timeoutMs: number;
  readonly poolSize: number;
}

export interface Config {
  /** The file this came from ('' for built-in defaults). */
  readonly path: string;
  /** Named directory maps (smmapd_map_NAME); empty: every request gets the Cyrus verification. */
  readonly maps: readonly MapSpec[];
  /** smmapd_verify_maps: map names (lower case) that get the Cyrus verification; null: every name not in `maps`. */
  readonly verifyMaps: readonly string[] | null;
  /** smmapd_maps_*: per-lookup deadline, answer cache TTLs (0 = off), connections per host. */
  readonly mapTimeoutMs: number;
  readonly mapCacheTtlMs: number;
  readonly mapNegativeCacheTtlMs: number;
  readonly mapPoolSize: number;
  // Cyrus options
  readonly configdirectory: string;
  readonly postuser: string;
  readonly lmtpDowncaseRcpt: boolean;
  readonly lmtpOverQuotaPermFailure: boolean;
  readonly virtdomains: VirtDomains;
  readonly defaultdomain: string;
  readonly unixhierarchysep: boolean;
  readonly debugCommand: string;
  // ours
  readonly store: string;
  readonly backend: Backend;
  readonly imap: ImapConfig;
  /** Answer cache lifetimes in ms (0 = off) for stores that cannot tell us when they change. */
  readonly cacheTtlMs: number;
  readonly negativeCacheTtlMs: number;
  /** Most answers one process keeps in its cache. */
  readonly cacheSize: number;
  readonly serviceName: string;
  readonly maxRequest: number;
  /** Idle seconds before a connection is closed (0 = never). */
  readonly timeout: number;
  /** How long a read waits for a locked SQLite store before answering TEMP, ms. */
  readonly storeBusyTimeoutMs: number;
  /** Processes sharing the listening sockets in the --listen model. */
  readonly workers: number;
  /** smmapd_busy_poll: the longest µs the event loop keeps polling after activity while the CPUs have room (0 = never; busy-poll.ts). */
  readonly busyPollUs: number;
  /** Connections one process serves at once; past it a client gets `TEMP Too many connections` and is closed. */
  readonly maxConnections: number;
  /** SIGTERM drain bound, ms. */
  readonly shutdownTimeoutMs: number;
  readonly unixSocketMode: number;
  readonly unixSocketOwner: string;
  readonly unixSocketGroup: string;
  /** Started as root: the user and group to run as once the sockets are bound ('' = stay). */
  readonly runUser: string;
  readonly runGroup: string;
  readonly logLevel: LogLevel;
  /** Log every answer (Cyrus's auditlog). */
  readonly audit: boolean;
  /** Level of audit lines (written whenever `audit` is on, whatever `logLevel` says). */
  readonly auditLevel: LogLevel;
  /** '' = the process model's default; 'stderr'; 'syslog'; else a file path. */
  readonly logTarget: string;
  /** syslog facility name (Cyrus's `syslog_facility`; our default is mail). */
  readonly syslogFacility: string;
  /** The syslog socket the `logger` child writes to; '' = its default, /dev/log. */
  readonly syslogSocket: string;
  /** `smmapd --policy`: the Postfix policy delegation actions (smmapd_policy_*). */
  readonly policy: PolicyActions;
  /** smmapd_metrics_listen: `inet:HOST:PORT` for Prometheus /metrics; '' = off. */
  readonly metricsListen: string;
  /** smmapd_listen: socketmap addresses (--listen syntax) the daemon serves when no --listen is given. */
  readonly listen: readonly string[];
  /** smmapd_policy_listen: addresses of the Postfix policy service in the same daemon. */
  readonly policyListen: readonly string[];
  /** smmapd_allow_from: who may connect to the TCP listeners (socketmap, policy, metrics); empty list: anyone. */
  readonly allowFrom: AllowList;
}

// Defined below the tables, which report a bad table file as one.
export { ConfigError };

/** `smmapd_map_NAME: TYPE:FILE`: a request for map NAME is answered from that table. */
export interface MapSpec {
  /** Lowercase, as every option name. */
  readonly name: string;
  readonly type: string;
  readonly file: string;
  /** `config:line` of the option, for errors about the table. */
  readonly where: string;
}

/** Every `smmapd_map_NAME` option; the files are read when the tables open. */
function mapsOf(opts: Map<string, { value: string; line: number }>, path: string): MapSpec[] {
  const out: MapSpec[] = [];
  for (const [key, { value, line }] of opts) {
    if (!key.startsWith('smmapd_map_')) continue;
    const name = key.slice('smmapd_map_'.length);
    const colon = value.indexOf(':');
    const type = colon > 0 ? value.slice(0, colon).toLowerCase() : '';
    const file = colon > 0 ? value.slice(colon + 1) : '';
    if (name === '' || /\s/.test(name)) throw new ConfigError(`${path}:${line}: ${key}: want smmapd_map_NAME with a NAME`);
    if (!TABLE_TYPES.includes(type) || file === '') {
      throw new ConfigError(`${path}:${line}: ${key}: want TYPE:FILE with TYPE one of ${TABLE_TYPES.join(', ')}, not "${value}"`);
    }
    out.push({ name, type, file, where: `${path}:${line}` });
  }
  return out;
}

const DEFAULT_CONFIG_DIRECTORY = '/var/lib/smmapd';


/** syslog facilities an admin may name (Cyrus accepts the same names, in any case). */
const SYSLOG_FACILITIES = ['mail', 'daemon', 'user', 'news', 'uucp', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'];

/** Parse imapd.conf text into option → value (keys lowercased). As in Cyrus, a line without ':' and an option given twice are fatal. */
export function parseImapdConf(text: string, path = 'config'): Map<string, { value: string; line: number }> {
  const out = new Map<string, { value: string; line: number }>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new ConfigError(`${path}:${i + 1}: invalid option line (want "name: value"): ${line}`);
    const key = line.slice(0, colon).trim().toLowerCase();
    // Cyrus's config loader refuses this too ("option specified twice"): say which lines.
    const first = out.get(key);
    if (first) throw new ConfigError(`${path}:${i + 1}: ${key} was already set on line ${first.line}`);
    out.set(key, { value: line.slice(colon + 1).trim(), line: i + 1 });
  }
  return out;
}

class Reader {
  constructor(
    private readonly opts: Map<string, { value: string; line: number }>,
    private readonly path: string,
  ) {}

  private fail(name: string, want: string): never {
    const o = this.opts.get(name)!;
    throw new ConfigError(`${this.path}:${o.line}: ${name}: ${want}, not "${o.value}"`);
  }

  str(name: string, dflt: string): string {
    return this.opts.get(name)?.value ?? dflt;
  }

  bool(name: string, dflt: boolean): boolean {
    const o = this.opts.get(name);
    if (!o) return dflt;
    const v = o.value.toLowerCase();
    if (['yes', 'on', 't', 'true', '1'].includes(v)) return true;
    if (['no', 'off', 'f', 'false', '0'].includes(v)) return false;
    return this.fail(name, 'want yes or no');
  }

  /** `orElse`: what else the option takes, named in the error (smmapd_workers: `or auto`). */
  int(name: string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER, orElse = ''): number {
    const o = this.opts.get(name);
    if (!o) return dflt;
    const alt = orElse === '' ? '' : ` ${orElse}`;
    if (!/^\d+$/.test(o.value)) this.fail(name, `want a whole number from ${min}${alt}`);
    const n = Number(o.value);
    if (n < min || n > max) this.fail(name, `want a whole number from ${min} to ${max}${alt}`);
    return n;
  }

  /** Space-separated listen addresses in --listen syntax; each checked so a typo stops the start. */
  addresses(name: string): string[] {
    const o = this.opts.get(name);
    if (!o) return [];
    const out = o.value.split(/\s+/).filter((a) => a !== '');
    for (const a of out) {
      try {
        parseListenSpec(a);
      } catch (e) {
        if (e instanceof ListenSpecError) this.fail(name, `want inet:HOST:PORT or unix:PATH addresses separated by spaces ("${a}")`);
        throw e;
      }
    }
    return out;
  }

  allowList(name: string): AllowList {
    const o = this.opts.get(name);
    try {
      return AllowList.parse(o?.value ?? '');
    } catch (e) {
      if (e instanceof AllowListError) this.fail(name, `want addresses and ADDR/BITS ranges: ${e.message}`);
      throw e;
    }
  }

  oneOf<T extends string>(name: string, dflt: T, aliases: Record<string, T>): T {
    const o = this.opts.get(name);
    if (!o) return dflt;
    const v = aliases[o.value.toLowerCase()];
    if (v === undefined) this.fail(name, `want one of ${[...new Set(Object.keys(aliases))].join(', ')}`);
    return v;
  }
}

function hostPort(server: string, tls: ImapTls, path: string): { host: string; port: number } {
  const dfltPort = tls === 'tls' ? 993 : 143;
  if (server === '') return { host: '', port: dfltPort };
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(server) ?? /^([^:]+)(?::(\d+))?$/.exec(server);
  if (!m || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))) {
    throw new ConfigError(`${path}: smmapd_imap_server: want host[:port], not "${server}"`);
  }
  return { host: m[1]!, port: m[2] !== undefined ? Number(m[2]) : dfltPort };
}

/** smmapd_metrics_listen: '' (off) or inet:HOST:PORT; checked here so a typo stops the start. */
function metricsListenOf(v: string, path: string): string {
  const m = /^inet6?:(?:\[[^\]]+\]|[^:[\]]+):(\d+)$/.exec(v);
  if (v !== '' && (m === null || Number(m[1]) < 1 || Number(m[1]) > 65535)) throw new ConfigError(`${path}: smmapd_metrics_listen: want inet:HOST:PORT, not "${v}"`);
  return v;
}

/** smmapd_policy_*: each action as Dovecot's quota_status_* (one line; `%s` = the reason). */
function policyActionsOf(r: Reader): PolicyActions {
  const d = defaultActions(r.bool('lmtp_over_quota_perm_failure', false));
  const action = (name: keyof Omit<PolicyActions, 'gracePercent'>): string => {
    const v = r.str(`smmapd_policy_${name}`, d[name]);
    if (v === '' && name !== 'toolarge') throw new ConfigError(`smmapd_policy_${name}: want a policy action (e.g. ${d[name]}), not nothing`);
    return v;
  };
  return {
    success: action('success'),
    nouser: action('nouser'),
    overquota: action('overquota'),
    toolarge: action('toolarge'),
    failure: action('failure'),
    gracePercent: r.int('smmapd_policy_grace', 0, 0, 1000),
  };
}

const LOG_LEVELS: Record<string, LogLevel> = { error: 'error', warning: 'warning', notice: 'notice', info: 'info', debug: 'debug' };

/** Where and what the daemon logs. */
function logOf(r: Reader): Pick<Config, 'logLevel' | 'audit' | 'auditLevel' | 'logTarget' | 'syslogFacility' | 'syslogSocket'> {
  return {
    logLevel: r.oneOf<LogLevel>('smmapd_log_level', 'notice', LOG_LEVELS),
    audit: r.bool('smmapd_audit', false),
    auditLevel: r.oneOf<LogLevel>('smmapd_audit_level', 'notice', LOG_LEVELS),
    logTarget: r.str('smmapd_log', ''),
    syslogFacility: r.oneOf<string>('syslog_facility', 'mail', Object.fromEntries(SYSLOG_FACILITIES.map((f) => [f, f]))),
    syslogSocket: r.str('smmapd_syslog_socket', ''),
  };
}

/** The IMAP store's server and login (smmapd_imap_*). */
function imapOf(r: Reader, where: string): ImapConfig {
  const tls = r.oneOf<ImapTls>('smmapd_imap_tls', 'starttls', { none: 'none', starttls: 'starttls', tls: 'tls' });
  const server = r.str('smmapd_imap_server', '');
  return {
    server, ...hostPort(server, tls, where), tls,
    caFile: r.str('smmapd_imap_ca_file', ''),
    user: r.str('smmapd_imap_user', ''),
    password: r.str('smmapd_imap_password', ''),
    passwordFile: r.str('smmapd_imap_password_file', ''),
    timeoutMs: r.int('smmapd_imap_timeout', 10, 1, 3600) * 1000,
    poolSize: r.int('smmapd_imap_pool_size', 4, 1, 64),
  };
}

/** Build a Config from imapd.conf text. */
export function configFromText(text: string, path = ''): Config {
  const opts = parseImapdConf(text, path || 'config');
  const r = new Reader(opts, path || 'config');
  const configdirectory = r.str('configdirectory', DEFAULT_CONFIG_DIRECTORY);
  const imap = imapOf(r, path || 'config');
  const backend = r.oneOf<Backend>('smmapd_backend', 'sqlite', { sqlite: 'sqlite', imap: 'imap' });
  if (backend === 'imap' && imap.host === '') throw new ConfigError(`${path || 'config'}: smmapd_backend is imap but smmapd_imap_server is not set`);
  const workersRaw = r.str('smmapd_workers', 'auto');
  const workers = workersRaw.toLowerCase() === 'auto' ? availableParallelism() : r.int('smmapd_workers', 1, 1, 256, 'or auto');
  const mode = r.str('smmapd_unix_socket_mode', '');
  if (mode !== '' && !/^[0-7]{3,4}$/.test(mode)) throw new ConfigError(`${path || 'config'}: smmapd_unix_socket_mode: want an octal mode like 0660, not "${mode}"`);
  return {
    path,
    maps: mapsOf(opts, path || 'config'),
    verifyMaps: verifyMapsOf(r.str('smmapd_verify_maps', '')),
    mapTimeoutMs: r.int('smmapd_maps_timeout', 5, 1, 3600) * 1000,
    mapCacheTtlMs: r.int('smmapd_maps_cache_ttl', 0, 0) * 1000,
    mapNegativeCacheTtlMs: r.int('smmapd_maps_negative_cache_ttl', 0, 0) * 1000,
    mapPoolSize: r.int('smmapd_maps_pool_size', 4, 1, 64),
    configdirectory,
    postuser: r.str('postuser', ''),
    lmtpDowncaseRcpt: r.bool('lmtp_downcase_rcpt', true),
    lmtpOverQuotaPermFailure: r.bool('lmtp_over_quota_perm_failure', false),
    virtdomains: r.oneOf<VirtDomains>('virtdomains', 'off', {
      off: 'off', no: 'off', false: 'off', '0': 'off', userid: 'userid', on: 'on', yes: 'on', true: 'on', '1': 'on',
    }),
    defaultdomain: r.str('defaultdomain', ''),
    unixhierarchysep: r.bool('unixhierarchysep', true),
    debugCommand: r.str('debug_command', ''),
    store: r.str('smmapd_store', '{configdirectory}/smmapd.db').replace('{configdirectory}', () => configdirectory),
    backend,
    imap,
    cacheTtlMs: r.int('smmapd_cache_ttl', 0, 0) * 1000,
    negativeCacheTtlMs: r.int('smmapd_negative_cache_ttl', 0, 0) * 1000,
    cacheSize: r.int('smmapd_cache_size', 100_000, 0),
    // Unset under Cyrus master: the service's cyrus.conf name, as Cyrus's config_ident.
    serviceName: r.str('smmapd_service_name', process.env.CYRUS_SERVICE || 'smmapd'),
    // behaviour §1: no reply may exceed 100,000 bytes (Postfix refuses it); `OK <key>` echoes the key.
    maxRequest: r.int('smmapd_max_request', 10_000, 16, MAX_REPLY - 'OK '.length),
    timeout: r.int('smmapd_timeout', 360, 0),
    storeBusyTimeoutMs: r.int('smmapd_store_busy_timeout', 500, 0, 60_000),
    workers,
    busyPollUs: r.int('smmapd_busy_poll', 200, 0, 1000),
    maxConnections: r.int('smmapd_max_connections', 2000, 1),
    shutdownTimeoutMs: r.int('smmapd_shutdown_timeout', 10, 0, 3600) * 1000,
    unixSocketMode: mode === '' ? 0o666 : parseInt(mode, 8),
    unixSocketOwner: r.str('smmapd_unix_socket_owner', ''),
    unixSocketGroup: r.str('smmapd_unix_socket_group', ''),
    runUser: r.str('smmapd_user', ''),
    runGroup: r.str('smmapd_group', ''),
    ...logOf(r),
    policy: policyActionsOf(r),
    metricsListen: metricsListenOf(r.str('smmapd_metrics_listen', ''), path || 'config'),
    listen: r.addresses('smmapd_listen'),
    policyListen: r.addresses('smmapd_policy_listen'),
    allowFrom: r.allowList('smmapd_allow_from'),
  };
}

export const DEFAULT_CONFIG_PATH = '/etc/smmapd.conf';

/**
 * Load the configuration. An explicitly named file must exist; without -C we read
 * /etc/smmapd.conf when it exists and otherwise run on the built-in defaults.
 */
export function loadConfig(path: string | undefined): Config {
  const file = path ?? DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (path === undefined && code === 'ENOENT') return configFromText('', '');
    throw new ConfigError(`cannot read configuration ${file}: ${(e as Error).message}`);
  }
  return configFromText(text, file);
}

/**
 * Options a running daemon cannot apply on SIGHUP (sockets bound, processes forked, ids
 * dropped, the log opened): their names where `next` differs from `running`, for the reload
 * to log; the running value stays until a restart.
 */
export function restartOnlyChanges(running: Config, next: Config): string[] {
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  const watched: Array<[string, unknown, unknown]> = [
    ['smmapd_listen', running.listen, next.listen],
    ['smmapd_policy_listen', running.policyListen, next.policyListen],
    ['smmapd_metrics_listen', running.metricsListen, next.metricsListen],
    ['smmapd_workers', running.workers, next.workers],
    ['smmapd_user', running.runUser, next.runUser],
    ['smmapd_group', running.runGroup, next.runGroup],
    ['smmapd_log', running.logTarget, next.logTarget],
    ['syslog_facility', running.syslogFacility, next.syslogFacility],
    ['smmapd_syslog_socket', running.syslogSocket, next.syslogSocket],
  ];
  return watched.filter(([, a, b]) => !same(a, b)).map(([name]) => name);
}

/** The hierarchy separator admins see: '/' with unixhierarchysep, else '.'. */
export function separatorOf(cfg: Pick<Config, 'unixhierarchysep'>): '/' | '.' {
  return cfg.unixhierarchysep ? '/' : '.';
}

/** smmapd_verify_maps: names separated by blanks or commas, compared without case as map names are; unset or empty: null. */
function verifyMapsOf(text: string): string[] | null {
  const names = text.split(/[\s,]+/).filter((n) => n !== '').map((n) => n.toLowerCase());
  return names.length === 0 ? null : names;
}
