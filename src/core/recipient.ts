// From recipient key to Cyrus mailbox name (behaviour §2), as Cyrus's smmapd verify_user does
// with mbname_from_recipient, mbname_downcaseuser and the postuser check (imap/smmapd.c,
// imap/mboxname.c). Runs on every request: one pass over the key, no regex built per
// call, and plain ASCII keys never touch the modified UTF-7 code.
import { isUtf8 } from 'node:buffer';
import type { VirtDomains } from './contract';
import { decodeComponent as extComponent, encodeComponent as intComponent, isDefaultDomain } from './namecodec';
import { isValidMutf7, utf8ToMutf7 } from './mutf7';
import type { Trace } from './trace';

export interface ResolveOptions {
  readonly virtdomains: VirtDomains;
  readonly defaultdomain: string;
  /** `postuser`: the userid whose detail names a shared folder ('' by default). */
  readonly postuser: string;
  /** `lmtp_downcase_rcpt`. */
  readonly downcase: boolean;
  /** '/' with unixhierarchysep (default), '.' without. */
  readonly separator: '/' | '.';
  /** `-p`: drop the detail. */
  readonly skipPlus: boolean;
}

export interface Recipient {
  /** User part plus `@domain` when a domain qualifies it; null for a shared folder (postuser). */
  readonly userid: string | null;
  /** Cyrus internal name: `[domain!]user.<local>[.<box>]*`, or `<box>[.<box>]*` for shared. */
  readonly mailbox: string;
}

/** The key as a string, or null when its bytes are not valid UTF-8 (it then names no mailbox). */
export function decodeKey(bytes: Buffer): string | null {
  return isUtf8(bytes) ? bytes.toString('utf8') : null;
}

const ASCII_UPPER = /[A-Z]+/g;

/** Lowercase ASCII letters only (Cyrus's lcase): `FRÉD` → `frÉd`, behaviour §2.5. */
export function asciiLower(s: string, isAscii = false): string {
  if (isAscii) return s.toLowerCase();
  return s.replace(ASCII_UPPER, (m) => m.toLowerCase());
}

/**
 * The detail's components in internal form (behaviour §2.3, §2.7, §2.8): modified UTF-7 unless
 * it already is, split on the separator, empty components dropped, `.` → `^`.
 */
function detailComponents(detail: string, sep: '/' | '.', ascii: boolean): string[] {
  let d = detail;
  if (!ascii || d.indexOf('&') >= 0) {
    if (!isValidMutf7(d)) d = utf8ToMutf7(d);
  }
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const end = d.indexOf(sep, start);
    const part = end < 0 ? d.slice(start) : d.slice(start, end);
    if (part !== '') out.push(intComponent(part));
    if (end < 0) return out;
    start = end + 1;
  }
}

/**
 * null: the key never names a mailbox — a control character (behaviour §2.9), nothing left to
 * name, or a `!` that would read as a domain separator in the internal name (Cyrus allows
 * `!` in no mailbox name but there, mboxname_policycheck; behaviour §2.8: `!` never marks a
 * domain).
 */
export function resolveRecipient(key: string, o: ResolveOptions, t?: Trace): Recipient | null {
  // One pass: control characters, non-ASCII, the last `@` (behaviour §2.1).
  let ascii = true;
  let at = -1;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return null;
    if (c === 0x40) at = i;
    else if (c > 0x7f) ascii = false;
  }
  const local = at < 0 ? key : key.slice(0, at);

  // Domain (behaviour §2.2): dropped with virtdomains off or when it is the defaultdomain.
  let domain: string | null = null;
  if (at >= 0 && o.virtdomains !== 'off') {
    const d = key.slice(at + 1);
    if (!isDefaultDomain(d, o.defaultdomain)) domain = o.downcase ? asciiLower(d, ascii) : d;
  }

  // Detail at the FIRST `+` (behaviour §2.3); -p drops it (behaviour §2.4).
  const plus = local.indexOf('+');
  let user = plus < 0 ? local : local.slice(0, plus);
  const detail = plus < 0 || o.skipPlus ? null : local.slice(plus + 1);
  if (o.downcase) user = asciiLower(user, ascii);

  let boxes: string[];
  try {
    boxes = detail === null || detail === '' ? [] : detailComponents(detail, o.separator, ascii);
  } catch {
    return null; // a lone surrogate: not text any UTF-8 key can carry
  }

  const userid = domain === null ? user : `${user}@${domain}`;
  if (t !== undefined) traceSplit(t, key, at, user, detail, domain, boxes, userid === o.postuser, o);
  if (userid === o.postuser) return sharedFolder(boxes);
  return userMailbox(user, domain, boxes);
}

function traceSplit(t: Trace, key: string, at: number, user: string, detail: string | null, domain: string | null, boxes: string[], post: boolean, o: ResolveOptions): void {
  const dom = at < 0 ? 'none' : domain === null ? `"${key.slice(at + 1)}" dropped (virtdomains ${o.virtdomains}${o.defaultdomain !== '' ? `, defaultdomain ${o.defaultdomain}` : ''})` : `"${domain}"`;
  const det = detail === null ? (o.skipPlus && key.indexOf('+') >= 0 ? 'dropped (-p)' : 'none') : `"${detail}" -> folders [${boxes.join(', ')}]`;
  t('split', `user "${user}"${post ? ' (the postuser: a shared folder)' : ''}, detail ${det}, domain ${dom}`);
}

/** The postuser's detail names a shared folder, with no user and no domain (behaviour §2.6). */
function sharedFolder(boxes: string[]): Recipient | null {
  if (boxes.length === 0) return null;
  const mailbox = boxes.join('.');
  return mailbox.indexOf('!') >= 0 ? null : { userid: null, mailbox };
}

/**
 * `[domain!]user.<user>[.<box>]*` with empty components dropped (behaviour §2.7). When the user
 * part is empty the first box becomes the user (`+shared.pub` with postuser `bb` is user
 * `shared`'s folder `pub`), and the userid follows it so the deny list (behaviour §3.1) is
 * checked against the mailbox's real owner, not against ''. For the same reason a `^` in
 * the user part reads as the `.` it stands for in the userid.
 */
function userMailbox(user: string, domain: string | null, boxes: string[]): Recipient | null {
  let owner: string;
  let body: string;
  if (user !== '') {
    owner = extComponent(user); // `fred^smith` is user `fred.smith`, as ownerOf says
    const u = intComponent(user);
    body = boxes.length === 0 ? `user.${u}` : `user.${u}.${boxes.join('.')}`;
  } else {
    if (boxes.length === 0) return null;
    owner = extComponent(boxes[0]!);
    body = `user.${boxes.join('.')}`;
  }
  if (body.indexOf('!') >= 0) return null;
  if (domain === null) return { userid: owner, mailbox: body };
  if (domain.indexOf('!') >= 0) return null;
  return { userid: `${owner}@${domain}`, mailbox: `${domain}!${body}` };
}
