// The searches of one ldap: lookup after the first, as dict_ldap_get_values() runs them for
// Postfix: group and list expansion (special, leaf and terminal result attributes, DN and
// URL recursion, recursion_limit, size_limit) and referral chasing (continuation
// references followed, at most libldap's hop limit deep). ldap.ts reads the table's file
// and runs the first search.
import { NoSuchObjectError, type Entry, type Filter } from 'ldapts';
import type { StoreLog } from '../core/contract';
import type { Results } from './expand';
import { ldapConnect, type LdapConn, type LdapConnSpec } from './ldap-conn';
import { parseFilter } from './ldap-filter';

export type Scope = 'sub' | 'one' | 'base';
export const SCOPES: Record<string, Scope> = { sub: 'sub', one: 'one', base: 'base' };
/** libldap's LDAP_OPT_REFHOPLIMIT default: referrals followed at most this deep. */
const REFERRAL_HOPS = 5;
/** LDAP resultCode referral: the search base lies under a referral object. */
const REFERRAL = 10;

/** What of an ldap: table its searches and expansion read. */
export interface LdapSearchSpec {
  /** terminal, leaf, ordinary, then special result attributes, as dict_ldap_open() lists them. */
  readonly attrs: string[];
  readonly numTerminal: number;
  readonly numLeaf: number;
  /** terminal + leaf + ordinary: the attributes from here on are special. */
  readonly numAttributes: number;
  readonly recursionLimit: number;
  readonly sizeLimit: number;
  readonly timeLimit: number;
  readonly chase: boolean;
  /** For the connections referrals lead to. */
  readonly conn: Omit<LdapConnSpec, 'url'>;
  readonly log: StoreLog;
}

/** A lookup that failed the way Postfix's does (dict->error set): TEMP, and not the host's fault. */
export class Failed extends Error {}

/** attrdesc_subtype(): 1 when `a2` is `a1` or a subtype of it, -1 when `a1` is a subtype of `a2`, else 0. */
export function attrSubtype(a1: string, a2: string): number {
  const x = a1.toLowerCase();
  const y = a2.toLowerCase();
  if (x === y || y.startsWith(`${x};`)) return 1;
  if (x.startsWith(`${y};`)) return -1;
  return 0;
}

/** An LDAP URL as ldap_url_parse() reads it for Postfix: the host is not used, scope defaults to base. */
export interface LdapUrl {
  readonly scheme: string;
  readonly hostport: string;
  readonly dn: string;
  readonly attrs: string[];
  readonly scope: Scope;
  readonly filter: string;
}

export const isLdapUrl = (v: string): boolean => /^ldap[si]?:\/\//i.test(v);

/** RFC 4516 `scheme://hostport/dn?attrs?scope?filter?exts`, percent-decoded; null when malformed. */
export function parseLdapUrl(u: string): LdapUrl | null {
  const m = /^(ldap[si]?):\/\/([^/?]*)(?:\/([^?]*)(?:\?([^?]*)(?:\?([^?]*)(?:\?([^?]*)(?:\?(.*))?)?)?)?)?$/i.exec(u);
  if (!m) return null;
  try {
    const dec = (x: string | undefined): string => decodeURIComponent(x ?? '');
    const scopeText = dec(m[5]).toLowerCase();
    const scope = scopeText === '' ? 'base' : SCOPES[scopeText];
    if (scope === undefined) return null;
    return { scheme: m[1]!.toLowerCase(), hostport: dec(m[2]), dn: dec(m[3]), attrs: dec(m[4]).split(',').filter((a) => a !== ''), scope, filter: dec(m[6]) || '(objectclass=*)' };
  } catch {
    return null;
  }
}

/** The filter of a DN member's search (parsed once). */
const ANY_ENTRY = parseFilter('(objectclass=*)');

/** An entry's values of exactly `name` (ldap_get_values_len), null when the entry has none. */
function valuesOf(entry: Entry, name: string): string[] | null {
  const n = name.toLowerCase();
  for (const [k, v] of Object.entries(entry)) {
    if (k === 'dn' || k.toLowerCase() !== n) continue;
    const vals = (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
    return vals.length > 0 ? vals : null;
  }
  return null;
}

/**
 * One search as search_st() runs it: null for noSuchObject, entries otherwise; a result code
 * other than success (sizeLimitExceeded included) fails the lookup. With chase_referrals on,
 * continuation references are followed, and so is a referral result (the base lies under a
 * referral object): libldap tries its URLs in turn and answers with the first that works.
 */
export async function search(s: LdapSearchSpec, c: LdapConn, base: string, scope: Scope, filter: Filter, attributes: string[], hops = 0): Promise<Entry[] | null> {
  let entries: Entry[];
  try {
    entries = (await c.client.search(base, { scope, filter, attributes, sizeLimit: s.sizeLimit, timeLimit: s.timeLimit })).searchEntries;
  } catch (e) {
    if (e instanceof NoSuchObjectError) return null;
    const code = (e as { code?: unknown }).code;
    if (code === REFERRAL && s.chase && c.referral.length > 0) return followReferralResult(s, c.referral, base, scope, filter, attributes, hops);
    // the server answered with an LDAP result code: the search is wrong, not the host
    if (typeof code === 'number') throw new Failed(`ldap: search error: ${(e as Error).message}`);
    throw e;
  }
  if (c.status === 4) {
    s.log(`ldap: query size limit (${s.sizeLimit}) exceeded`, 'error', 'ldap: size limit');
    throw new Failed('ldap: size limit exceeded');
  }
  if (!s.chase) return entries;
  for (const ref of c.refs) {
    const more = await followReferral(s, ref, base, scope, filter, attributes, hops);
    if (more !== null) entries = entries.concat(more);
  }
  return entries;
}

/** A referral result: its URLs in turn until one answers (the last failure is the lookup's). */
async function followReferralResult(s: LdapSearchSpec, urls: string[], base: string, scope: Scope, filter: Filter, attributes: string[], hops: number): Promise<Entry[] | null> {
  let last: unknown;
  for (const ref of urls) {
    try {
      return await followReferral(s, ref, base, scope, filter, attributes, hops);
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

/** One continuation reference or referral URL: the search again on the server it names, unauthenticated, on a connection of its own. */
async function followReferral(s: LdapSearchSpec, ref: string, base: string, scope: Scope, filter: Filter, attributes: string[], hops: number): Promise<Entry[] | null> {
  if (hops >= REFERRAL_HOPS) throw new Failed('ldap: referral hop limit exceeded');
  const u = parseLdapUrl(ref);
  if (u === null || u.scheme === 'ldapi') throw new Failed(`ldap: bad referral ${ref}`);
  const rc = await ldapConnect({ ...s.conn, url: `${u.scheme}://${u.hostport}`, bind: 'none', startTls: false }).catch((e: unknown) => {
    throw new Failed(`ldap: referral ${ref}: ${(e as Error).message}`);
  });
  try {
    const f = /\?[^?]*\?[^?]*\?./.test(ref) ? parseFilter(u.filter) : filter;
    const scopeGiven = /^[^?]*\?[^?]*\?[^?]/.test(ref);
    return await search(s, rc, u.dn || base, scopeGiven ? u.scope : scope, f, attributes, hops + 1);
  } finally {
    void rc.client.unbind().catch(() => undefined);
  }
}

/** url_attrs(): the URL's attributes that are result attributes (all of ours when it names none); null: skip the URL. */
function urlAttrs(s: LdapSearchSpec, u: LdapUrl): string[] | null {
  if (u.attrs.length === 0) return s.attrs;
  const out: string[] = [];
  for (const a1 of u.attrs) {
    for (const a2 of s.attrs) {
      const rel = attrSubtype(a1, a2);
      if (rel > 0) out.push(a2);
      else if (rel < 0) out.push(a1);
    }
  }
  return out.length > 0 ? out : null;
}

/** Whether `entry` has a value of one of the attributes from..to (exclusive). */
function hasAny(s: LdapSearchSpec, entry: Entry, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (valuesOf(entry, s.attrs[i]!) !== null) return true;
  return false;
}

/** dict_ldap_get_values(): the result values of `entries` into `res`, recursing through special attributes. */
export async function getValues(s: LdapSearchSpec, c: LdapConn, entries: Entry[], res: Results, recursion: number): Promise<void> {
  // as in dict_ldap.c these carry over from one entry to the next when an entry has none of the attributes
  let isLeaf = true;
  let isTerminal = false;
  let count = 0;
  for (const entry of entries) {
    if (s.sizeLimit > 0 && ++count > s.sizeLimit) throw new Failed('ldap: size limit exceeded');
    if (hasAny(s, entry, 0, s.numTerminal)) isTerminal = true;
    if (!isTerminal && s.numLeaf > 0 && hasAny(s, entry, s.numAttributes, s.attrs.length)) isLeaf = false;
    for (const attr of Object.keys(entry)) {
      if (attr === 'dn') continue;
      const vals = valuesOf(entry, attr);
      if (vals === null) continue;
      let i = s.attrs.findIndex((a) => attrSubtype(a, attr) > 0);
      if (i < 0) i = s.attrs.length;
      if (i < s.numAttributes || isTerminal) {
        if ((isTerminal && i >= s.numTerminal) || (!isLeaf && i < s.numTerminal + s.numLeaf)) continue;
        for (const v of vals) res.add(v);
      } else if (i < s.attrs.length) {
        if (recursion >= s.recursionLimit) {
          s.log(`ldap: recursion limit (${s.recursionLimit}) exceeded for ${attr}=${vals[0]}`, 'error', 'ldap: recursion limit');
          throw new Failed('ldap: recursion limit exceeded');
        }
        for (const v of vals) await expandSpecial(s, c, v, res, recursion);
      }
    }
  }
}

/** One value of a special result attribute: a DN or an LDAP URL to search, then recurse. */
async function expandSpecial(s: LdapSearchSpec, c: LdapConn, v: string, res: Results, recursion: number): Promise<void> {
  let entries: Entry[] | null;
  if (isLdapUrl(v)) {
    const u = parseLdapUrl(v);
    if (u === null) throw new Failed(`ldap: malformed URL ${v}`);
    const attrs = urlAttrs(s, u);
    if (attrs === null) return;
    let f: Filter;
    try {
      f = parseFilter(u.filter);
    } catch {
      throw new Failed(`ldap: bad filter in URL ${v}`);
    }
    entries = await search(s, c, u.dn, u.scope, f, attrs);
  } else {
    entries = await search(s, c, v, 'base', ANY_ENTRY, s.attrs);
  }
  // a DN that is not there: as though it had no result attributes (Postfix warns and goes on)
  if (entries === null) return void s.log(`ldap: DN ${v} not found, skipping`, 'warning', 'ldap: DN not found');
  await getValues(s, c, entries, res, recursion + 1);
}
