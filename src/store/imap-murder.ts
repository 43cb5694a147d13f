// The live store's lookups, in the order Cyrus's checks need the answers, so that what the
// frontend of a Cyrus Murder knows survives a backend's outage. A plain server (no MUPDATE
// capability) gets the one-session lookup of imap-lookup.ts. Against a Murder frontend:
//   1. on any session, what the frontend knows by itself from the mailbox list: which backend
//      holds the mailbox (the server annotation, cached; a missing mailbox is NOTFOUND here) and,
//      when the policy reads it, the ACL (GETACL);
//   2. the quota (GETQUOTAROOT, which the frontend proxies) as a job of that backend
//      (imap-backends.ts): bounded sessions, and a failure marks that backend down. Then the
//      answer carries `quotaFailure`, and the checks reply TEMP only once they reach the quota:
//      a shared folder without the anonymous post right stays PERM.
import type { Config } from '../config';
import { formatAcl } from '../core/acl';
import { BackendUnavailable } from './imap-backends';
import type { ImapSession } from './imap-client';
import { domainRoot, lookupMailbox, namingOf, quotaOf } from './imap-lookup';
import { toServerName } from './imap-names';
import type { ImapPool } from './imap-pool';
import type { MailboxState } from './store';

/** Mailbox → backend, bounded; an entry is asked again after a while (a mailbox may move). */
class BackendMap {
  private readonly m = new Map<string, { backend: string; at: number }>();
  constructor(private readonly max = 100_000, private readonly ttlMs = 10 * 60_000) {}

  get(name: string): string | undefined {
    const e = this.m.get(name);
    if (e === undefined) return undefined;
    if (Date.now() - e.at > this.ttlMs) {
      this.m.delete(name);
      return undefined;
    }
    return e.backend;
  }

  set(name: string, backend: string): void {
    this.m.delete(name);
    if (this.m.size >= this.max) this.m.delete(this.m.keys().next().value!);
    this.m.set(name, { backend, at: Date.now() });
  }

  delete(name: string): void {
    this.m.delete(name);
  }
}

type FrontendAnswer =
  | { readonly kind: 'plain'; readonly state: MailboxState | null }
  | { readonly kind: 'murder'; readonly name: string; readonly backend: string; readonly acl: string };

export class MurderLookups {
  /** Unknown until the first session tells (the MUPDATE capability). */
  private murder: boolean | undefined;
  private readonly where = new BackendMap();

  constructor(private readonly pool: ImapPool, private readonly cfg: Config) {}

  async mailbox(internal: string, withAcl: boolean): Promise<MailboxState | null> {
    const cached = this.murder === true ? this.where.get(internal) : undefined;
    // A user's own folder whose backend is known and up needs nothing of the frontend alone.
    const first: FrontendAnswer | null = cached !== undefined && !withAcl && !this.pool.backends.isDown(cached)
      ? null
      : await this.pool.run((s) => this.frontend(s, internal, withAcl, cached));
    if (first?.kind === 'plain') return first.state;
    const backend = first?.backend ?? cached!;
    const acl = first?.acl ?? '';
    const name = first?.name ?? null;
    if (first) this.where.set(internal, backend);
    try {
      const quota = await this.pool.run(async (s) => {
        const n = name ?? toServerName(internal, namingOf(this.cfg, s.separator));
        return n === null ? 'missing' : quotaOf(s, n, internal, this.cfg, domainRoot);
      }, undefined, backend);
      if (quota === 'missing') {
        this.where.delete(internal);
        return null;
      }
      return { acl, quota };
    } catch (e) {
      if (e instanceof BackendUnavailable) return { acl, quota: null, quotaFailure: e.reply };
      throw e;
    }
  }

  /** Step 1 on one session; a plain server gets the whole lookup there. */
  private async frontend(
    s: ImapSession, internal: string, withAcl: boolean, cached: string | undefined,
  ): Promise<FrontendAnswer> {
    this.murder = s.murder;
    if (!s.murder) return { kind: 'plain', state: await lookupMailbox(s, internal, this.cfg, domainRoot, withAcl) };
    const name = toServerName(internal, namingOf(this.cfg, s.separator));
    if (name === null) return { kind: 'plain', state: null };
    // While the backend is down a cached answer could hide a deletion: the frontend knows.
    const backend = cached !== undefined && !this.pool.backends.isDown(cached) ? cached : await s.backendOf(name);
    if (backend === null) return { kind: 'plain', state: null };
    if (!withAcl) return { kind: 'murder', name, backend, acl: '' };
    const acl = await s.acl(name);
    if (acl === null) return { kind: 'plain', state: null };
    return { kind: 'murder', name, backend, acl: formatAcl(acl) };
  }
}
