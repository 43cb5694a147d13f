// Mailbox names between Cyrus's internal form (what stores keep: `example.com!user.fred^smith.sub`,
// a domain root `example.com!`) and what an IMAP admin session shows with the SERVER's separator
// (`user/fred.smith/sub@example.com` or `user.fred^smith.sub@example.com`, a domain root
// `@example.com`). The separator comes from the server (LIST "" ""), not from our configuration.
import { bodyToSeparated, isDefaultDomain, joinDomain, separatedToBody, splitAddress, splitDomain } from '../core/namecodec';

export interface ServerNaming {
  /** The server's hierarchy separator. */
  readonly separator: string;
  /** Whether names carry domains (virtdomains userid/on). */
  readonly domains: boolean;
  /** Names in this domain carry none (Cyrus `defaultdomain`). */
  readonly defaultdomain: string;
}

/** Without domains a `!` is no separator (no such name reaches a store anyway). */
function splitInternalDomain(internal: string, domains: boolean): { domain: string; rest: string } {
  if (!domains) return { domain: '', rest: internal };
  const [domain, rest] = splitDomain(internal);
  return { domain: domain ?? '', rest };
}

/**
 * Internal → the server's name. Null when the name cannot exist there (a component holding the
 * server's separator, or an empty domain).
 */
export function toServerName(internal: string, n: ServerNaming): string | null {
  const { domain, rest } = splitInternalDomain(internal, n.domains);
  // `!user.fred` (`fred@` with an empty domain that qualifies): no IMAP name reaches it.
  if (domain === '' && n.domains && internal.includes('!')) return null;
  // `fred@other.test@example.org` resolves to user `fred@other.test` in the default domain:
  // sent as `user/fred@other.test` the server would read user fred of domain other.test.
  // With domains an `@` can only be the domain separator: no such mailbox (as Cyrus answers).
  if (n.domains && rest.includes('@')) return null;
  // A component holding the server's separator would read as two there.
  if (n.separator !== '.' && rest.includes(n.separator)) return null;
  const ext = bodyToSeparated(rest, n.separator);
  return domain === '' ? ext : `${ext}@${domain}`;
}

/** The server's name (as LIST or QUOTAROOT show it to an admin) → internal. */
export function fromServerName(external: string, n: ServerNaming): string {
  let domain: string | null = null;
  let rest = external;
  if (n.domains) {
    [rest, domain] = splitAddress(external);
    if (domain !== null && isDefaultDomain(domain, n.defaultdomain)) domain = null;
  }
  return joinDomain(domain === '' ? null : domain, separatedToBody(rest, n.separator));
}

/** The domain of an internal name ('' for none). */
export function domainOf(internal: string, domains: boolean): string {
  return splitInternalDomain(internal, domains).domain;
}
