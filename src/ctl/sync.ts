// smmapctl sync [--every SECS]: copy the IMAP server's mailboxes, ACLs and quota roots into the
// SQLite store in one swap (SqliteAdmin.replaceSnapshot), so the daemon can answer from a replica
// while the server is away. Reads as the admin: one raw `LIST "" "*"`, then GETQUOTAROOT and
// GETACL per mailbox spread over a pool of sessions, and GETQUOTA "@domain" once per domain.
// A failed round writes nothing: the store keeps the previous snapshot. One mailbox the server
// refuses to describe (Cyrus: `NO Mailbox has an invalid format` for a broken quota record)
// does not fail the round: it is recorded as failing, so its lookups answer TEMP.
import type { Config } from '../config';
import { ImapCommandError, type ImapSession } from '../store/imap-client';
import { domainOf, fromServerName } from '../store/imap-names';
import { ImapPool } from '../store/imap-pool';
import { domainRoot, lookupMailbox, namingOf } from '../store/imap';
import { StoreError, type MailboxState, type QuotaState, type Snapshot } from '../store/store';
import type { CtlContext } from './context';
import { UsageError } from './context';
import { parseCount, stringOpt, type CommandSpec } from './spec';

/** Hears mailboxes done and the total as a round goes. */
export type Progress = (done: number, total: number) => void;

export interface SyncSummary {
  readonly mailboxes: number;
  /** Mailboxes the server refused to describe (recorded as failing). */
  readonly failing: number;
  readonly quotaRoots: number;
  readonly acls: number;
  readonly seconds: number;
}

function selectable(flags: readonly string[]): boolean {
  return !flags.some((f) => /^\\(noselect|nonexistent)$/i.test(f));
}

/** Every mailbox name (internal form) the server lists as selectable. */
async function listMailboxes(pool: ImapPool, cfg: Config): Promise<string[]> {
  // A big LIST takes a while (10,000 names: under a second): the deadline counts from the last name received.
  const { entries, separator } = await pool.run(async (s, touch) => ({ entries: await s.list('*', touch), separator: s.separator }));
  const naming = namingOf(cfg, separator);
  const names = new Set<string>();
  for (const e of entries) if (selectable(e.flags)) names.add(fromServerName(e.name, naming));
  return [...names];
}

/** Run `job` over `items` with `width` workers; results in item order. */
async function parallel<T, R>(items: readonly T[], width: number, job: (item: T) => Promise<R>, tick: () => void): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await job(items[i]!);
      tick();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, items.length)) }, worker));
  return out;
}

/** The server's own refusal of one command (a tagged NO), as opposed to losing the server. */
function refusal(e: unknown): ImapCommandError | null {
  const cause = e instanceof StoreError ? e.cause : e;
  return cause instanceof ImapCommandError && cause.status === 'NO' ? cause : null;
}

/**
 * Read the whole server into a Snapshot. Throws (StoreError) when the server cannot be read;
 * a mailbox it refuses to describe is in the snapshot with its `failure` (and `log` hears it).
 */
export async function readImapSnapshot(
  cfg: Config, pool: ImapPool, progress?: Progress, log: (msg: string) => void = () => undefined,
): Promise<Snapshot & { acls: number; failing: number }> {
  const names = await listMailboxes(pool, cfg);
  const domains = [...new Set(names.map((n) => domainOf(n, cfg.virtdomains !== 'off')).filter((d) => d !== ''))];
  const domainRoots = new Map<string, QuotaState | null>();
  await parallel(domains, pool.size, async (d) => {
    domainRoots.set(d, await pool.run((s) => domainRoot(s, d)));
  }, () => undefined);
  const fromCache = async (_s: ImapSession, d: string): Promise<QuotaState | null> => domainRoots.get(d) ?? null;

  let done = 0;
  const one = async (name: string): Promise<MailboxState | null | { failure: string }> => {
    try {
      return await pool.run((s) => lookupMailbox(s, name, cfg, fromCache));
    } catch (e) {
      const no = refusal(e);
      if (no === null) throw e;
      log(`sync: ${name}: the server refused to describe it (${no.message}): recorded as failing, its lookups answer TEMP`);
      return { failure: no.text || no.message };
    }
  };
  const states = await parallel(names, pool.size, one, () => {
    done++;
    progress?.(done, names.length);
  });

  const mailboxes: Array<{ name: string; acl: string; failure?: string }> = [];
  const quotas = new Map<string, QuotaState>();
  let failing = 0;
  names.forEach((name, i) => {
    const st = states[i];
    if (!st) return; // deleted since the LIST
    if ('failure' in st) {
      failing++;
      mailboxes.push({ name, acl: '', failure: st.failure });
      return;
    }
    mailboxes.push({ name, acl: st.acl });
    if (st.quota) quotas.set(st.quota.root, st.quota);
  });
  return { mailboxes, quotas: [...quotas.values()], acls: mailboxes.length - failing, failing };
}

/** One sync round: read everything, then swap it in. */
export async function syncOnce(
  cfg: Config, pool: ImapPool, write: (snap: Snapshot) => void, progress?: Progress, log?: (msg: string) => void,
): Promise<SyncSummary> {
  const t0 = performance.now();
  const snap = await readImapSnapshot(cfg, pool, progress, log);
  write({ mailboxes: snap.mailboxes, quotas: snap.quotas });
  return {
    mailboxes: snap.mailboxes.length, failing: snap.failing, quotaRoots: snap.quotas.length, acls: snap.acls,
    seconds: (performance.now() - t0) / 1000,
  };
}

export function summaryLine(s: SyncSummary): string {
  const failing = s.failing > 0 ? ` (${s.failing} failing: their lookups answer TEMP)` : '';
  return `synced ${s.mailboxes} mailboxes${failing}, ${s.quotaRoots} quota roots, ${s.acls} ACLs in ${s.seconds.toFixed(1)} s`;
}

/** Progress on stderr, only on a terminal, at most four times a second. */
function ttyProgress(): { tick: (done: number, total: number) => void; clear: () => void } {
  if (!process.stderr.isTTY) return { tick: () => undefined, clear: () => undefined };
  let last = 0;
  return {
    tick: (done, total) => {
      const now = Date.now();
      if (now - last < 250 && done < total) return;
      last = now;
      process.stderr.write(`\rsync: ${done}/${total} mailboxes`);
    },
    clear: () => process.stderr.write('\r\x1b[K'),
  };
}

function poolFor(cfg: Config, connections: number, log: (msg: string) => void): ImapPool {
  if (cfg.imap.host === '') throw new UsageError('smmapd_imap_server is not set: sync reads from an IMAP server');
  return new ImapPool({ imap: cfg.imap, size: connections, timeoutMs: cfg.imap.timeoutMs, log });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const syncCommands: readonly CommandSpec[] = [
  {
    words: ['sync'],
    args: [],
    options: [
      { long: 'every', value: 'SECS', description: 'repeat every SECS seconds (a failed round is logged and retried)' },
      { long: 'connections', value: 'N', description: 'IMAP sessions in parallel (default smmapd_imap_pool_size)' },
    ],
    summary: 'copy mailboxes, ACLs and quota roots from the IMAP server into the store',
    details:
      'Reads smmapd_imap_server as its admin and replaces the store\'s mailboxes and quota roots\n' +
      'in one transaction (the deny list stays). STORAGE usage is known in KiB only (behaviour §3).',
    batch: false,
    async run(ctx: CtlContext, _args, opts) {
      const everyText = stringOpt(opts, 'every');
      const every = everyText === undefined ? 0 : parseCount('--every', everyText);
      if (everyText !== undefined && every < 1) throw new UsageError('--every: want at least 1 second');
      const connText = stringOpt(opts, 'connections');
      const connections = connText === undefined ? ctx.cfg.imap.poolSize : parseCount('--connections', connText);
      if (connections < 1 || connections > 64) throw new UsageError('--connections: want 1 to 64');
      const log = (msg: string): void => void process.stderr.write(`smmapctl: ${msg}\n`);
      const pool = poolFor(ctx.cfg, connections, log);
      const write = (snap: Snapshot): void => ctx.store(true).replaceSnapshot(snap);
      // smmapctl prints a command's output when it ends; a repeating sync never ends.
      const say = every === 0 ? ctx.out : (line: string): void => void process.stdout.write(`${line}\n`);
      try {
        for (;;) {
          const p = ttyProgress();
          try {
            const summary = await syncOnce(ctx.cfg, pool, write, p.tick, (msg) => { p.clear(); log(msg); });
            p.clear();
            say(summaryLine(summary));
          } catch (e) {
            p.clear();
            if (every === 0) throw e;
            log(`sync failed, store unchanged: ${(e as Error).message}`);
          }
          if (every === 0) return;
          await sleep(every * 1000);
        }
      } finally {
        await pool.close();
      }
    },
  },
];
