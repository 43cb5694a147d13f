// Reading an IMAP server's whole state as its admin, for a replica (`smmapctl sync`): one raw
// `LIST "" "*"`, then GETQUOTAROOT and GETACL per mailbox spread over a pool of sessions, and
// GETQUOTA "@domain" once per domain. Throws when the server cannot be read; one mailbox the
// server refuses to describe (Cyrus: `NO Mailbox has an invalid format` for a broken quota
// record) is in the snapshot with its failure, so its lookups answer TEMP.
import type { Config } from '../config';
import { ImapCommandError, type ImapSession } from './imap-client';
import { domainOf, fromServerName } from './imap-names';
import type { ImapPool } from './imap-pool';
import { domainRoot, lookupMailbox, namingOf } from './imap-lookup';
import { StoreError, type MailboxState, type QuotaState, type Snapshot } from './store';

/** Hears mailboxes done and the total as a round goes. */
export type Progress = (done: number, total: number) => void;

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
