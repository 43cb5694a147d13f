// One mailbox on one admin session: whether it exists (GETQUOTAROOT, which also names the
// governing quota root with its usage and limits in one round trip), its ACL (GETACL) when the
// policy will read it, and, for a mailbox in a domain with no closer root, the domain's own root
// (GETQUOTA "@domain": Cyrus leaves it out of QUOTAROOT). STORAGE comes in KiB rounded down:
// usage is reported as KiB × 1024 (behaviour §3, last paragraphs). Shared by the live store
// (imap.ts, imap-murder.ts) and `smmapctl sync` (imap-snapshot.ts).
import type { Config } from '../config';
import { formatAcl } from '../core/acl';
import type { ImapSession, QuotaRootAnswer, Resources } from './imap-client';
import { domainOf, fromServerName, toServerName, type ServerNaming } from './imap-names';
import type { MailboxState, QuotaState } from './store';

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
 * The quota part of a lookup on one session: the governing root (GETQUOTAROOT, then the domain's
 * own root when none is closer); `missing` when the mailbox does not exist. Against a Murder
 * frontend these are the commands the backend must answer.
 */
export async function quotaOf(
  s: ImapSession, name: string, internal: string, cfg: Config,
  domainQuota: (s: ImapSession, domain: string) => Promise<QuotaState | null> = domainRoot,
): Promise<QuotaState | null | 'missing'> {
  const naming = namingOf(cfg, s.separator);
  const qr = await s.quotaRoot(name);
  if (qr === null) return 'missing';
  const quota = governingRoot(qr, naming);
  const domain = domainOf(internal, naming.domains);
  if (quota === null && domain !== '') return domainQuota(s, domain);
  return quota;
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
  const name = toServerName(internal, namingOf(cfg, s.separator));
  if (name === null) return null;
  const quota = await quotaOf(s, name, internal, cfg, domainQuota);
  if (quota === 'missing') return null;
  // Not only shared folders' ACLs: `+user.fred.sub` (postuser) is ACL-checked too; the policy
  // says when it will read the ACL (withAcl), and sync wants them all.
  if (!withAcl) return { acl: '', quota };
  const acl = await s.acl(name);
  if (acl === null) return null; // deleted between the two commands
  return { acl: formatAcl(acl), quota };
}
