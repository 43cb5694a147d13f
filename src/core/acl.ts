// Cyrus ACLs (behaviour §2 last paragraph, §3.3): the text form is `identifier\trights\t` pairs,
// as in mailboxes.db; an identifier starting with `-` is a negative entry. Rights follow
// Cyrus's lib/acl.c (cyrus_acl_strtomask / cyrus_acl_masktostr with the default
// `deleteright: c`), lib/acl_afs.c (cyrus_acl_myrights, cyrus_acl_set) and cyradm's
// keywords (perl/imap/IMAP/Admin.pm %aclalias).

export class AclError extends Error {}

// Rights bits (lib/acl.h).
const L = 1 << 0; // lookup
const R = 1 << 1;
const S = 1 << 2;
const W = 1 << 3;
const I = 1 << 4;
const P = 1 << 5; // post
const K = 1 << 6; // create
const X = 1 << 7; // delete mailbox
const T = 1 << 8; // delete message
const E = 1 << 9; // expunge
const A = 1 << 10; // admin
const N = 1 << 11; // annotate
const USER0 = 12; // bits 12..21 for the user rights 0-9

/** Legacy macros, as with `deleteright: c` (Cyrus's default): `c` = k+x, `d` = t+e. */
const LEGACY_C = K | X;
const LEGACY_D = T | E;

const LETTER_BITS: Readonly<Record<string, number>> = {
  l: L, r: R, s: S, w: W, i: I, p: P, k: K, x: X, t: T, e: E, a: A, n: N,
};

/** Cyrus's ACL_ALL: what a new user INBOX gives its owner (mboxlist_create_acl). */
export const ALL_RIGHTS = 'lrswipkxtecdan';

/** cyradm's SETACL keywords (Admin.pm %aclalias). */
export const ACL_KEYWORDS: Readonly<Record<string, string>> = {
  none: '',
  read: 'lrs',
  post: 'lrsp',
  append: 'lrsip',
  write: 'lrswipkxte',
  delete: 'lrxte',
  all: 'lrswipkxtea',
};

/**
 * Rights letters → bit mask (cyrus_acl_strtomask). `strict`: throw AclError on a letter
 * Cyrus does not know (cyrus_acl_checkstr's message); otherwise ignore it, as reading an
 * ACL does.
 */
export function rightsToMask(rights: string, strict = false): number {
  let mask = 0;
  let legacy = 0;
  for (const ch of rights) {
    const bit = LETTER_BITS[ch];
    if (bit !== undefined) mask |= bit;
    else if (ch === 'c') legacy |= LEGACY_C;
    else if (ch === 'd') legacy |= LEGACY_D;
    else if (ch >= '0' && ch <= '9') mask |= 1 << (USER0 + ch.charCodeAt(0) - 0x30);
    else if (strict) throw new AclError(`The ${ch} right is not supported`);
  }
  // A macro counts only when none of its member rights is given explicitly.
  if (legacy & LEGACY_C && !(mask & LEGACY_C)) mask |= LEGACY_C;
  if (legacy & LEGACY_D && !(mask & LEGACY_D)) mask |= LEGACY_D;
  return mask;
}

/** Bit mask → rights letters in Cyrus's canonical order (cyrus_acl_masktostr). */
export function maskToRights(mask: number): string {
  let s = '';
  for (const [ch, bit] of [['l', L], ['r', R], ['s', S], ['w', W], ['i', I], ['p', P], ['k', K], ['x', X], ['t', T], ['e', E]] as const) {
    if (mask & bit) s += ch;
  }
  if (mask & LEGACY_C) s += 'c';
  if (mask & LEGACY_D) s += 'd';
  if (mask & A) s += 'a';
  if (mask & N) s += 'n';
  for (let d = 0; d <= 9; d++) if (mask & (1 << (USER0 + d))) s += String(d);
  return s;
}

/** Cyrus ACL text → [identifier, rights] pairs, in order. A trailing fragment without its tab is ignored, as Cyrus does. */
export function parseAcl(acl: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let pos = 0;
  while (pos < acl.length) {
    const tab1 = acl.indexOf('\t', pos);
    if (tab1 < 0) break;
    const tab2 = acl.indexOf('\t', tab1 + 1);
    if (tab2 < 0) break;
    out.push([acl.slice(pos, tab1), acl.slice(tab1 + 1, tab2)]);
    pos = tab2 + 1;
  }
  return out;
}

export function formatAcl(entries: ReadonlyArray<readonly [string, string]>): string {
  let s = '';
  for (const [id, rights] of entries) s += `${id}\t${rights}\t`;
  return s;
}

/**
 * The rights the anonymous identity holds (cyrus_acl_myrights with no auth state, which is
 * a member of `anyone` and `anonymous` only): the union of their entries less the union of
 * `-anyone` and `-anonymous`.
 */
export function anonymousRights(acl: string): number {
  let positive = 0;
  let negative = 0;
  for (const [entry, rights] of parseAcl(acl)) {
    const neg = entry.startsWith('-');
    const id = neg ? entry.slice(1) : entry;
    if (id !== 'anyone' && id !== 'anonymous') continue;
    if (neg) negative |= rightsToMask(rights);
    else positive |= rightsToMask(rights);
  }
  return positive & ~negative;
}

export function anonymousMayPost(acl: string): boolean {
  return (anonymousRights(acl) & P) !== 0;
}

export function anonymousMayLookup(acl: string): boolean {
  return (anonymousRights(acl) & L) !== 0;
}

/**
 * A SETACL identifier, checked and canonical: `anyone` and `anonymous` in any case become
 * lowercase (auth_canonifyid), a leading `-` marks a negative entry. Tabs or control
 * characters would corrupt the ACL text.
 */
export function canonicalIdentifier(identifier: string): string {
  const neg = identifier.startsWith('-');
  const bare = neg ? identifier.slice(1) : identifier;
  if (bare === '') throw new AclError('empty ACL identifier');
  if (/[\x00-\x1f\x7f]/.test(bare)) throw new AclError('ACL identifier holds a control character');
  const lower = bare.toLowerCase();
  const id = lower === 'anyone' || lower === 'anonymous' ? lower : bare;
  return neg ? `-${id}` : id;
}

/**
 * SETACL (Cyrus mboxlist_setacl + cyrus_acl_set): `rights` is letters (replace), `+letters`
 * (add), `-letters` (remove), or a cyradm keyword; an empty result, `''` or `none` removes
 * the entry. The identifier (which may itself start with `-`) is separate from the rights.
 * An existing entry keeps its place; a new one goes last. Throws AclError on bad input.
 */
export function setAclEntry(acl: string, identifier: string, rights: string): string {
  const id = canonicalIdentifier(identifier);
  let spec = rights.trim();
  const keyword = ACL_KEYWORDS[spec.toLowerCase()];
  if (keyword !== undefined) spec = keyword;
  let mode: 'set' | 'add' | 'remove' = 'set';
  if (spec.startsWith('+')) mode = 'add';
  else if (spec.startsWith('-')) mode = 'remove';
  const letters = mode === 'set' ? spec : spec.slice(1);
  const access = rightsToMask(letters, true);

  const entries = parseAcl(acl);
  const idx = entries.findIndex(([e]) => e === id);
  const old = idx >= 0 ? rightsToMask(entries[idx]![1]) : 0;
  const mask = mode === 'set' ? access : mode === 'add' ? old | access : old & ~access;

  if (mask === 0) {
    if (idx >= 0) entries.splice(idx, 1);
  } else if (idx >= 0) {
    entries[idx] = [id, maskToRights(mask)];
  } else {
    entries.push([id, maskToRights(mask)]);
  }
  return formatAcl(entries);
}

/** DELETEACL; deleting an absent entry is fine. */
export function deleteAclEntry(acl: string, identifier: string): string {
  const id = canonicalIdentifier(identifier);
  const entries = parseAcl(acl);
  const kept = entries.filter(([e]) => e !== id);
  return kept.length === entries.length ? formatAcl(entries) : formatAcl(kept);
}

/** `defaultacl`'s default: what a new mailbox with no owner and no ancestor gets. */
export const DEFAULT_ACL = 'anyone\tlrs\t';

/**
 * The ACL a new mailbox gets (Cyrus mboxlist_create_acl): a user INBOX gives its owner all
 * rights; otherwise the nearest existing ancestor's ACL is copied; with no ancestor a user
 * folder gives its owner all rights and a shared folder gets `anyone lrs` (defaultacl).
 */
export function initialAcl(owner: string | null, isUserInbox: boolean, ancestorAcl: string | null): string {
  if (isUserInbox && owner !== null) return formatAcl([[owner, ALL_RIGHTS]]);
  if (ancestorAcl !== null) return ancestorAcl;
  if (owner !== null) return formatAcl([[owner, ALL_RIGHTS]]);
  return DEFAULT_ACL;
}
