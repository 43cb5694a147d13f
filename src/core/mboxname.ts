// Mailbox names: what an admin writes (cyradm lm, behaviour §2 last paragraph) and Cyrus's
// internal form that stores keep. After Cyrus imap/mboxname.c in the admin namespace
// (mbname_from_extname / mbname_extname with admindomains, mbname_from_intname) and
// quota_findroot (imap/quota_db.c).
//
// Internal: `[domain!]` then components joined by `.`, a `.` inside a component stored as
// `^`; `user.<localpart>[.<box>]*` for users; `domain!` alone is a domain's quota root.
// External with separator `.`: the same text, `@domain` at the end instead of `domain!`.
// External with `/`: components joined by `/`, a `.` inside a component written as `.`.
import type { VirtDomains } from './contract';
import { isValidMutf7, utf8ToMutf7 } from './mutf7';
import { bodyToSeparated, decodeComponent, encodeComponent, isDefaultDomain, joinDomain, splitAddress, splitDomain } from './namecodec';

// Kept here for the callers that know them from this module.
export { isDefaultDomain, splitDomain };

export interface NameOptions {
  readonly separator: '/' | '.';
  readonly virtdomains: VirtDomains;
  readonly defaultdomain: string;
}

export class NameError extends Error {}

const CONTROL = /[\x00-\x1f\x7f]/;
const NON_ASCII = /[^\x00-\x7f]/;

function checkDomain(domain: string, external: string): void {
  if (domain === '') throw new NameError(`${external}: empty domain`);
  if (/[!/]/.test(domain)) throw new NameError(`${external}: invalid domain "${domain}"`);
}

/**
 * One external component → internal form. Modified UTF-7 is taken as it is; a component
 * holding non-ASCII text is taken as UTF-8 and encoded (a convenience: Cyrus itself wants
 * names in modified UTF-7); ASCII that is not valid modified UTF-7 (a stray `&`) is an error.
 */
function intComponent(comp: string, o: NameOptions, external: string): string {
  if (comp === '') throw new NameError(`${external}: empty name component`);
  if (comp.includes('!')) throw new NameError(`${external}: "!" is not allowed in a mailbox name`);
  // Cyrus _array_from_extname: `/` never belongs to a component, `^` not with the `/` separator.
  if (comp.includes('/')) throw new NameError(`${external}: "/" is not allowed in a mailbox name component`);
  if (o.separator === '/' && comp.includes('^')) throw new NameError(`${external}: "^" is not allowed in a name with the "/" separator`);
  let c = comp;
  if (!isValidMutf7(c)) {
    if (!NON_ASCII.test(c)) throw new NameError(`${external}: not valid modified UTF-7 (write "&" as "&-")`);
    c = utf8ToMutf7(c);
  }
  return encodeComponent(c);
}

/** `user/fred.smith/sub@example.com` → `example.com!user.fred^smith.sub`; `@example.com` → `example.com!`. Throws NameError. */
export function toInternal(external: string, o: NameOptions): string {
  if (external === '') throw new NameError('empty mailbox name');
  if (CONTROL.test(external)) throw new NameError('mailbox name holds a control character');
  const [local, d] = splitAddress(external);
  let domain: string | null = null;
  if (d !== null) {
    if (o.virtdomains === 'off') throw new NameError(`${external}: a domain needs virtdomains`);
    checkDomain(d, external);
    if (!isDefaultDomain(d, o.defaultdomain)) domain = d;
  }
  if (local === '') {
    if (domain === null) throw new NameError(`${external}: the default domain has no domain quota root`);
    return `${domain}!`;
  }
  const comps = local.split(o.separator).map((c) => intComponent(c, o, external));
  if (comps.length === 1 && comps[0] === 'user') throw new NameError(`${external}: "user" alone is not a mailbox`);
  return joinDomain(domain, comps.join('.'));
}

/** The inverse of toInternal: `example.com!user.fred^smith.sub` → `user/fred.smith/sub@example.com`. */
export function toExternal(internal: string, o: NameOptions): string {
  const [domain, body] = splitDomain(internal);
  const suffix = domain === null || isDefaultDomain(domain, o.defaultdomain) ? '' : `@${domain}`;
  if (body === '') {
    if (suffix === '') throw new NameError(`"${internal}" is not a mailbox name`);
    return suffix;
  }
  return bodyToSeparated(body, o.separator) + suffix;
}

/**
 * Cyrus quota_findroot order: the name, then the name with its last `.` component removed,
 * again and again down to one component (`user.fred.sub`, `user.fred`, `user`), then the
 * domain root `domain!` for a name in a domain.
 */
export function quotaRootCandidates(internal: string): string[] {
  const [domain, body] = splitDomain(internal);
  const prefix = joinDomain(domain, '');
  const out: string[] = [];
  let b = body;
  while (b !== '') {
    out.push(prefix + b);
    const dot = b.lastIndexOf('.');
    if (dot < 0) break;
    b = b.slice(0, dot);
  }
  if (domain !== null) out.push(prefix);
  return out;
}

/**
 * The parent's internal name, or null at the top: a user INBOX (`user.fred`) and a
 * top-level shared folder (`shared`) have none (Cyrus mboxlist_findparent stops there).
 */
export function parentOf(internal: string): string | null {
  const [domain, body] = splitDomain(internal);
  const dot = body.lastIndexOf('.');
  if (dot < 0) return null;
  const parent = body.slice(0, dot);
  if (parent === 'user') return null;
  return joinDomain(domain, parent);
}

/** True for `[domain!]user.<name>` with no folder below it. */
export function isUserInbox(internal: string): boolean {
  const body = splitDomain(internal)[1];
  return body.startsWith('user.') && body.indexOf('.', 5) < 0 && body.length > 5;
}

/** The owning userid (`fred`, `fred@example.com`) of a user mailbox, null for a shared one; `^` reads `.`. */
export function ownerOf(internal: string): string | null {
  const [domain, body] = splitDomain(internal);
  if (!body.startsWith('user.')) return null;
  const end = body.indexOf('.', 5);
  const local = end < 0 ? body.slice(5) : body.slice(5, end);
  if (local === '') return null;
  const userid = decodeComponent(local);
  return domain === null ? userid : `${userid}@${domain}`;
}
