// Reading an IMAP server's whole state as its admin, for a replica (`smmapctl sync`): one raw
// `LIST "" "*"`, then GETQUOTAROOT and GETACL per mailbox spread over a pool of sessions, and
// GETQUOTA "@domain" once per domain. Throws when the server cannot be read; one mailbox the
// server refuses to describe (Cyrus: `NO Mailbox has an invalid format` for a broken quota
// record) is in the snapshot with its failure, so its lookups answer TEMP. Through a Cyrus
// Murder frontend the LIST also names each mailbox's backend (LIST-METADATA), and each lookup is
// a job of its backend (imap-backends.ts): a backend down or hung fails only its own mailboxes,
// recorded as failing and counted by backend, and the round goes on.
import type { Config } from '../config';
import { BackendUnavailable } from './imap-backends';
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

/** Every mailbox name (internal form) the server lists as selectable, with its Murder backend ('' for none). */
async function listMailboxes(pool: ImapPool, cfg: Config): Promise<Map<string, string>> {
  // A big LIST takes a while (10,000 names: under a second): the deadline counts from the last name received.
  const { entries, separator, murder } = await pool.run(async (s, touch) => ({ entries: await s.list('*', touch), separator: s.separator, murder: s.murder }));
  const naming = namingOf(cfg, separator);
  const names = new Map<string, string>();
  const external = entries.filter((e) => selectable(e.flags)).map((e) => e.name);
  const where = murder ? await backendsOf(pool, external) : new Map<string, string>();
  for (const n of external) names.set(fromServerName(n, naming), where.get(n) ?? '');
  return names;
}

/** Each mailbox's backend, BATCH names per command; a batch with a name gone since the LIST goes name by name. */
const BATCH = 200;
async function backendsOf(pool: ImapPool, names: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < names.length; i += BATCH) {
    const batch = names.slice(i, i + BATCH);
    const got = await pool.run(async (s) => {
      try {
        return await s.backendsOf(batch);
      } catch (e) {
        if (!(e instanceof ImapCommandError)) throw e;
        const one = new Map<string, string>();
        for (const n of batch) {
          const b = await s.backendOf(n);
          if (b !== null) one.set(n, b);
        }
        return one;
      }
    });
    for (const [n, b] of got) out.set(n, b);
  }
  return out;
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
): Promise<Snapshot & { acls: number; failing: number; backendsDown: Map<string, number> }> {
  const where = await listMailboxes(pool, cfg);
  const names = [...where.keys()];
  const domains = [...new Set(names.map((n) => domainOf(n, cfg.virtdomains !== 'off')).filter((d) => d !== ''))];
  const domainRoots = new Map<string, QuotaState | null>();
  await parallel(domains, pool.size, async (d) => {
    domainRoots.set(d, await pool.run((s) => domainRoot(s, d)));
  }, () => undefined);
  const fromCache = async (_s: ImapSession, d: string): Promise<QuotaState | null> => domainRoots.get(d) ?? null;

  let done = 0;
  const backendsDown = new Map<string, number>();
  const one = async (name: string): Promise<MailboxState | null | { failure: string }> => {
    try {
      return await pool.run((s) => lookupMailbox(s, name, cfg, fromCache), undefined, where.get(name));
    } catch (e) {
      if (e instanceof BackendUnavailable) {
        // Logged once by the pool when the backend went down; counted here by backend.
        backendsDown.set(e.backend, (backendsDown.get(e.backend) ?? 0) + 1);
        return { failure: e.reply };
      }
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
  return { mailboxes, quotas: [...quotas.values()], acls: mailboxes.length - failing, failing, backendsDown };
}
