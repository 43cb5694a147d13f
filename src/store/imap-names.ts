// Mailbox names between Cyrus's internal form (what stores keep: `example.com!user.fred^smith.sub`,
// a domain root `example.com!`) and what an IMAP admin session shows with the SERVER's separator
// (`user/fred.smith/sub@example.com` or `user.fred^smith.sub@example.com`, a domain root
// `@example.com`). The separator comes from the server (LIST "" ""), not from our configuration.
import { isDefaultDomain } from '../core/mboxname';

export interface ServerNaming {
  /** The server's hierarchy separator. */
  readonly separator: string;
  /** Whether names carry domains (virtdomains userid/on). */
  readonly domains: boolean;
  /** Names in this domain carry none (Cyrus `defaultdomain`). */
  readonly defaultdomain: string;
}

function splitInternalDomain(internal: string, domains: boolean): { domain: string; rest: string } {
  const bang = domains ? internal.indexOf('!') : -1;
  return bang < 0 ? { domain: '', rest: internal } : { domain: internal.slice(0, bang), rest: internal.slice(bang + 1) };
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
  let ext: string;
  if (n.separator === '.') {
    ext = rest;
  } else {
    const parts = rest === '' ? [] : rest.split('.');
    if (parts.some((p) => p.includes(n.separator))) return null;
    ext = parts.map((p) => p.replace(/\^/g, '.')).join(n.separator);
  }
  return domain === '' ? ext : `${ext}@${domain}`;
}

/** The server's name (as LIST or QUOTAROOT show it to an admin) → internal. */
export function fromServerName(external: string, n: ServerNaming): string {
  let domain = '';
  let rest = external;
  if (n.domains) {
    const at = external.lastIndexOf('@');
    if (at >= 0) {
      domain = external.slice(at + 1);
      rest = external.slice(0, at);
      if (isDefaultDomain(domain, n.defaultdomain)) domain = '';
    }
  }
  const internal = n.separator === '.'
    ? rest
    : rest.split(n.separator).map((p) => p.replace(/\./g, '^')).join('.');
  return domain === '' ? internal : `${domain}!${internal}`;
}

/** The domain of an internal name ('' for none). */
export function domainOf(internal: string, domains: boolean): string {
  return splitInternalDomain(internal, domains).domain;
}
