// The live IMAP store (`smmapd_backend: imap`): every lookup asks the IMAP server, as its admin,
// whether the mailbox exists (GETQUOTAROOT, which also names the governing quota root with its
// usage and limits in one round trip), for its ACL (GETACL) when the policy will read it, and, for a mailbox in a domain with
// no closer root, for the domain's own root (GETQUOTA "@domain": Cyrus leaves it out of
// QUOTAROOT). The deny list lives in the local store. STORAGE comes in KiB rounded down: usage is
// reported as KiB × 1024 (behaviour §3, last paragraphs).
import { existsSync } from 'node:fs';
import type { Config } from '../config';
import { formatAcl } from '../core/acl';
import type { ImapSession, QuotaRootAnswer, Resources } from './imap-client';
import { domainOf, fromServerName, toServerName, type ServerNaming } from './imap-names';
import { ImapPool } from './imap-pool';
import { openStore as openSqliteStore } from './sqlite';
import type { DenyEntry, MailboxState, MailboxStore, QuotaState } from './store';
import type { StoreLog } from '../core/contract';

/** A quota root's state from the server's resources (STORAGE in KiB; a negative limit is none). */
export function quotaFromResources(root: string, r: Resources): QuotaState {
  const storage = r.get('STORAGE');
  const message = r.get('MESSAGE');
  return {
    root,
    storageLimitKiB: storage && storage.limit >= 0 ? storage.limit : null,
    messageLimit: message && message.limit >= 0 ? message.limit : null,
    storageUsed: (storage?.used ?? 0) * 1024,
    messageUsed: message?.used ?? 0,
  };
}

export function namingOf(cfg: Config, separator: string): ServerNaming {
  return { separator, domains: cfg.virtdomains !== 'off', defaultdomain: cfg.defaultdomain };
}

/** The governing root from a QUOTAROOT answer: the first listed root the server gave QUOTA data for. */
function governingRoot(a: QuotaRootAnswer, naming: ServerNaming): QuotaState | null {
  for (const root of a.roots) {
    const res = a.quotas.get(root);
    if (res) return quotaFromResources(fromServerName(root, naming), res);
  }
  return null;
}

/** A domain's own quota root (`@example.com`), or null when it has none. */
export async function domainRoot(s: ImapSession, domain: string): Promise<QuotaState | null> {
  const res = await s.quota(`@${domain}`);
  return res === null ? null : quotaFromResources(`${domain}!`, res);
}

/**
 * Look one internal name up on one session. `domainQuota` answers for a domain's own root
 * (sync asks once per domain; the live store asks each time).
 */
export async function lookupMailbox(
  s: ImapSession, internal: string, cfg: Config,
  domainQuota: (s: ImapSession, domain: string) => Promise<QuotaState | null> = domainRoot,
  withAcl = true,
): Promise<MailboxState | null> {
  const naming = namingOf(cfg, s.separator);
  const name = toServerName(internal, naming);
  if (name === null) return null;
  const qr = await s.quotaRoot(name);
  if (qr === null) return null;
  let quota = governingRoot(qr, naming);
  const domain = domainOf(internal, naming.domains);
  if (quota === null && domain !== '') quota = await domainQuota(s, domain);
  // Not only shared folders' ACLs: `+user.fred.sub` (postuser) is ACL-checked too; the policy
  // says when it will read the ACL (withAcl), and sync wants them all.
  if (!withAcl) return { acl: '', quota };
  const acl = await s.acl(name);
  if (acl === null) return null; // deleted between the two commands
  return { acl: formatAcl(acl), quota };
}

class ImapStore implements MailboxStore {
  private readonly pool: ImapPool;

  constructor(private readonly cfg: Config, private readonly denyStore: MailboxStore, log: StoreLog) {
    this.pool = new ImapPool({ imap: cfg.imap, size: cfg.imap.poolSize, timeoutMs: cfg.imap.timeoutMs, log });
  }

  denyEntry(userid: string): DenyEntry | null | Promise<DenyEntry | null> {
    // With the IMAP backend the local store holds only the deny list, and a site without one
    // need not create it: no file, no entries. A file that exists but fails is still TEMP.
    if (!existsSync(this.cfg.store)) return null;
    return this.denyStore.denyEntry(userid);
  }

  mailbox(name: string, withAcl = true): Promise<MailboxState | null> {
    return this.pool.run((s) => lookupMailbox(s, name, this.cfg, domainRoot, withAcl));
  }

  async close(): Promise<void> {
    await this.pool.close();
    await this.denyStore.close();
  }
}

/** The live IMAP store. Lookups throw StoreError (→ TEMP) when the server cannot answer in time. */
export function createImapStore(cfg: Config, denyStore: MailboxStore, log: StoreLog = () => undefined): MailboxStore {
  return new ImapStore(cfg, denyStore, log);
}

/** The registry's entry point. The deny list stays local with the IMAP backend: it lives in the SQLite store. */
export function openStore(cfg: Config, log: StoreLog): MailboxStore {
  return createImapStore(cfg, openSqliteStore(cfg, log), log);
}
