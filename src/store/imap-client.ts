// One authenticated admin session to the IMAP server, over imapflow. This is the one place that
// touches imapflow's internals (exec(), the command table): its public API has no GETACL, its
// getQuota() hides errors, and its NAMESPACE step hangs against Cyrus for an admin (Cyrus answers
// NIL for the personal namespace; imapflow then throws before releasing its parser). Everything
// here speaks the server's own mailbox names; callers convert (imap-names.ts).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import type { ImapConfig } from '../config';

/** Usage and limit of one quota resource, as the server reports them (STORAGE in KiB). */
export interface Resource {
  readonly used: number;
  readonly limit: number;
}

/** The resources of one quota root, by upper-case name (STORAGE, MESSAGE, ...). */
export type Resources = ReadonlyMap<string, Resource>;

export interface ListEntry {
  readonly name: string;
  /** Name attributes, as sent (`\Noselect`, `\HasChildren`, ...). */
  readonly flags: readonly string[];
}

export interface QuotaRootAnswer {
  /** Root names in the order the server listed them (may be empty). */
  readonly roots: readonly string[];
  /** The QUOTA responses that came with it, by root name. */
  readonly quotas: ReadonlyMap<string, Resources>;
}

/**
 * A tagged NO or BAD. `nonexistent`: the mailbox does not exist (`[NONEXISTENT]` or Cyrus's
 * "Mailbox does not exist", nothing else). `noQuotaRoot`: "Quota root does not exist", which
 * Cyrus also says of an existing mailbox whose quota root record is gone: for GETQUOTA no
 * root, for GETQUOTAROOT a mailbox without a quota (Cyrus's smmapd answers OK for it).
 */
export class ImapCommandError extends Error {
  constructor(
    readonly status: string,
    readonly text: string,
    readonly nonexistent: boolean,
    readonly noQuotaRoot = false,
  ) {
    super(`${status} ${text}`);
    this.name = 'ImapCommandError';
  }
}

/** Cyrus's annotation naming the backend that holds a mailbox (a Murder frontend answers it itself). */
export const SERVER_ANNOTATION = '/shared/vendor/cmu/cyrus-imapd/server';

/** Cyrus's refusal when a Murder frontend cannot reach the backend (IMAP_SERVER_UNAVAILABLE). */
export function isBackendUnavailable(e: unknown): boolean {
  return e instanceof ImapCommandError && e.status === 'NO' && /^server\(s\) unavailable/i.test(e.text);
}

export interface ImapSession {
  /** The server's hierarchy separator, from `LIST "" ""`. */
  readonly separator: string;
  /** The server is part of a Cyrus Murder (it advertises MUPDATE): mailboxes live on backends. */
  readonly murder: boolean;
  /** False once the connection is closed or broken. */
  readonly usable: boolean;
  /** GETQUOTAROOT: null when the mailbox does not exist. */
  quotaRoot(name: string): Promise<QuotaRootAnswer | null>;
  /** GETQUOTA: null when there is no such quota root. */
  quota(root: string): Promise<Resources | null>;
  /** GETACL as [identifier, rights] pairs; null when the mailbox does not exist. */
  acl(name: string): Promise<Array<[string, string]> | null>;
  /**
   * GETMETADATA of the server annotation: the backend holding the mailbox ('' when the server
   * names none: not a Murder, or the server itself); null when the mailbox does not exist.
   */
  backendOf(name: string): Promise<string | null>;
  /**
   * The server annotation of several mailboxes in one GETMETADATA (Cyrus takes a list of names;
   * a Murder frontend answers it from its mailbox list, where `LIST ... RETURN (METADATA ...)`
   * and `DEPTH infinity` ask the backends). Rejects (ImapCommandError) when one does not exist.
   */
  backendsOf(names: readonly string[]): Promise<Map<string, string>>;
  /** Raw `LIST "" pattern`: names and flags, no decoding, no special-use probing. `onEntry` hears each as it comes. */
  list(pattern: string, onEntry?: () => void): Promise<ListEntry[]>;
  /** Called once when the connection goes away, for whatever reason. */
  onClose(cb: () => void): void;
  /** Drop the connection now (no LOGOUT). */
  destroy(): void;
  /** LOGOUT, bounded by `ms`, then drop. */
  logout(ms: number): Promise<void>;
}

// ---- the narrow view of imapflow internals we rely on (imapflow 2.1.2) ----

interface Untagged {
  readonly attributes?: unknown[];
}
interface ExecResult {
  next(): void;
}
interface ExecOptions {
  untagged?: Record<string, (u: Untagged) => Promise<void>>;
}
type CommandHandler = (conn: Internals, ...args: unknown[]) => Promise<unknown>;
interface Internals {
  exec(command: string, attributes: unknown[], options?: ExecOptions): Promise<ExecResult>;
  commands: Map<string, CommandHandler>;
  namespace?: { prefix: string; delimiter: string | null };
}
interface RejectedCommand {
  responseStatus?: string;
  responseText?: string;
  response?: { attributes?: Array<{ section?: Array<{ value?: unknown }> }> };
}

const internals = (c: ImapFlow): Internals => c as unknown as Internals;

/** A token's text: strings, atoms and literals (Buffers) alike; NIL is null. */
function text(a: unknown): string | null {
  if (a === null || a === undefined || Array.isArray(a)) return null;
  const v = (a as { value?: unknown }).value;
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'number') return String(v);
  return null;
}

function commandError(e: unknown): unknown {
  const r = e as RejectedCommand;
  if (typeof r?.responseStatus !== 'string') return e; // not a tagged NO/BAD: connection trouble
  const txt = r.responseText ?? '';
  const code = text(r.response?.attributes?.[0]?.section?.[0])?.toUpperCase() ?? '';
  const no = r.responseStatus === 'NO';
  const nonexistent = no && (code === 'NONEXISTENT' || /^mailbox does not exist/i.test(txt));
  return new ImapCommandError(r.responseStatus, txt, nonexistent, no && !nonexistent && /^quota root does not exist/i.test(txt));
}

/** Run one command with untagged handlers; always releases the response (or the parser stalls). */
async function run(c: ImapFlow, command: string, args: unknown[], untagged: ExecOptions['untagged'] = {}): Promise<void> {
  let res: ExecResult;
  try {
    res = await internals(c).exec(command, args, { untagged });
  } catch (e) {
    throw commandError(e);
  }
  res.next();
}

const str = (value: string): { type: 'STRING'; value: string } => ({ type: 'STRING', value });

/** The server annotation's value from `* METADATA name (entry value)`; null when absent or NIL. */
function annotationValue(u: Untagged): string | null {
  const pairs = u.attributes?.[1];
  if (!Array.isArray(pairs)) return null;
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    if (text(pairs[i])?.toLowerCase() === SERVER_ANNOTATION) return text(pairs[i + 1]);
  }
  return null;
}

/** `(STORAGE 8 100 MESSAGE 3 5)` → resources. */
function parseResources(list: unknown): Map<string, Resource> {
  const out = new Map<string, Resource>();
  if (!Array.isArray(list)) return out;
  for (let i = 0; i + 2 < list.length; i += 3) {
    const name = text(list[i])?.toUpperCase();
    const used = Number(text(list[i + 1]));
    const limit = Number(text(list[i + 2]));
    if (name && Number.isFinite(used) && Number.isFinite(limit)) out.set(name, { used, limit });
  }
  return out;
}

/** Replace imapflow's NAMESPACE step with `LIST "" ""`, which also gives the separator. */
function listForSeparator(client: ImapFlow): void {
  const conn = internals(client);
  conn.commands = new Map(conn.commands);
  conn.commands.set('NAMESPACE', async (c: Internals) => {
    let delimiter: string | null = null;
    const res = await c.exec('LIST', [str(''), str('')], {
      untagged: { LIST: async (u) => { delimiter = text(u.attributes?.[1]) ?? delimiter; } },
    });
    res.next();
    c.namespace = { prefix: '', delimiter };
    return c.namespace;
  });
}

/** The admin password: inline, or the first line of the password file (read at each connect, so it can rotate). */
export function imapPassword(cfg: ImapConfig): string {
  if (cfg.password !== '') return cfg.password;
  if (cfg.passwordFile === '') return '';
  return readFileSync(cfg.passwordFile, 'utf8').split(/\r?\n/, 1)[0] ?? '';
}

function flowOptions(cfg: ImapConfig, ca: Buffer | undefined, timeoutMs: number): ImapFlowOptions {
  const tlsOpts = {
    ...(ca ? { ca } : {}),
    ...(isIP(cfg.host) === 0 ? { servername: cfg.host } : {}),
  };
  return {
    host: cfg.host,
    port: cfg.port,
    secure: cfg.tls === 'tls',
    doSTARTTLS: cfg.tls === 'starttls',
    tls: tlsOpts,
    auth: { user: cfg.user, pass: imapPassword(cfg) },
    logger: false,
    disableAutoIdle: true,
    disableCompression: true,
    disableAutoEnable: true,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    // A wedged server is caught by the callers' deadlines; this only reaps forgotten sockets.
    socketTimeout: Math.max(timeoutMs * 6, 60_000),
    clientInfo: { name: 'smmapd' },
  };
}

class Session implements ImapSession {
  private closed = false;
  private readonly closeCbs: Array<() => void> = [];

  constructor(private readonly client: ImapFlow, readonly separator: string, readonly murder: boolean) {
    client.on('close', () => this.markClosed());
  }

  get usable(): boolean {
    return !this.closed && this.client.usable;
  }

  markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cb of this.closeCbs.splice(0)) cb();
  }

  onClose(cb: () => void): void {
    if (this.closed) cb();
    else this.closeCbs.push(cb);
  }

  async quotaRoot(name: string): Promise<QuotaRootAnswer | null> {
    const roots: string[] = [];
    const quotas = new Map<string, Resources>();
    try {
      await run(this.client, 'GETQUOTAROOT', [str(name)], {
        QUOTAROOT: async (u) => {
          for (const a of (u.attributes ?? []).slice(1)) {
            const t = text(a);
            if (t !== null) roots.push(t);
          }
        },
        QUOTA: async (u) => {
          const root = text(u.attributes?.[0]);
          if (root !== null) quotas.set(root, parseResources(u.attributes?.[1]));
        },
      });
    } catch (e) {
      if (e instanceof ImapCommandError && e.nonexistent) return null;
      // The mailbox exists; the root it names has no record: no quota governs it.
      if (e instanceof ImapCommandError && e.noQuotaRoot) return { roots: [], quotas: new Map() };
      throw e;
    }
    return { roots, quotas };
  }

  async quota(root: string): Promise<Resources | null> {
    let found: Resources | null = null;
    try {
      await run(this.client, 'GETQUOTA', [str(root)], {
        QUOTA: async (u) => { found = parseResources(u.attributes?.[1]); },
      });
    } catch (e) {
      if (e instanceof ImapCommandError && (e.nonexistent || e.noQuotaRoot)) return null;
      throw e;
    }
    return found;
  }

  async acl(name: string): Promise<Array<[string, string]> | null> {
    const pairs: Array<[string, string]> = [];
    try {
      await run(this.client, 'GETACL', [str(name)], {
        ACL: async (u) => {
          const a = u.attributes ?? [];
          for (let i = 1; i + 1 < a.length; i += 2) {
            const id = text(a[i]);
            const rights = text(a[i + 1]);
            if (id !== null && rights !== null) pairs.push([id, rights]);
          }
        },
      });
    } catch (e) {
      if (e instanceof ImapCommandError && e.nonexistent) return null;
      throw e;
    }
    return pairs;
  }

  async backendOf(name: string): Promise<string | null> {
    let backend = '';
    try {
      await run(this.client, 'GETMETADATA', [str(name), str(SERVER_ANNOTATION)], {
        METADATA: async (u) => { backend = annotationValue(u) ?? backend; },
      });
    } catch (e) {
      if (e instanceof ImapCommandError && e.nonexistent) return null;
      throw e;
    }
    return backend;
  }

  async backendsOf(names: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    await run(this.client, 'GETMETADATA', [names.map(str), str(SERVER_ANNOTATION)], {
      METADATA: async (u) => {
        const name = text(u.attributes?.[0]);
        if (name !== null) out.set(name, annotationValue(u) ?? '');
      },
    });
    return out;
  }

  async list(pattern: string, onEntry?: () => void): Promise<ListEntry[]> {
    const entries: ListEntry[] = [];
    await run(this.client, 'LIST', [str(''), str(pattern)], {
      LIST: async (u) => {
        const name = text(u.attributes?.[2]);
        const rawFlags = u.attributes?.[0];
        const flags = Array.isArray(rawFlags) ? rawFlags.map(text).filter((f): f is string => f !== null) : [];
        if (name !== null) entries.push({ name, flags });
        onEntry?.();
      },
    });
    return entries;
  }

  destroy(): void {
    this.client.close();
    this.markClosed();
  }

  async logout(ms: number): Promise<void> {
    if (this.closed) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.client.logout().catch(() => undefined),
      new Promise<void>((r) => { timer = setTimeout(r, ms); }),
    ]);
    clearTimeout(timer);
    this.destroy();
  }
}

/**
 * Connect and log in as the admin. `onError` hears socket errors after the login (imapflow
 * emits them as 'error' events, which would crash the process unheard). Rejects on any failure;
 * the caller bounds the wait and aborts through `signal`.
 */
export async function openSession(
  cfg: ImapConfig, ca: Buffer | undefined, timeoutMs: number, onError: (e: Error) => void, signal?: AbortSignal,
): Promise<ImapSession> {
  const client = new ImapFlow(flowOptions(cfg, ca, timeoutMs));
  client.on('error', (e: Error) => onError(e));
  listForSeparator(client);
  // close() rejects a pending connect() at once: that is how a caller's deadline stops a login.
  const abort = (): void => client.close();
  signal?.addEventListener('abort', abort, { once: true });
  try {
    if (signal?.aborted) throw new Error('aborted');
    await client.connect();
  } catch (e) {
    client.close();
    throw e;
  } finally {
    signal?.removeEventListener('abort', abort);
  }
  const sep = internals(client).namespace?.delimiter;
  if (typeof sep !== 'string' || sep.length !== 1) {
    client.close();
    throw new Error('IMAP server gave no hierarchy separator for LIST "" ""');
  }
  const murder = [...(client.capabilities?.keys() ?? [])].some((c) => c.startsWith('MUPDATE'));
  return new Session(client, sep, murder);
}
