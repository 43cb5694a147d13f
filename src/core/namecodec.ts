// The one codec for Cyrus mailbox-name components and domains (behaviour §2). Every other
// module converts names through these functions: recipient keys (recipient.ts), admin names
// (mboxname.ts), IMAP server names (store/imap-names.ts), smmapctl listings (ctl/names.ts).
//
// Internal form: `[domain!]` then components joined by `.`, where a `.` inside a component is
// stored as `^` (Cyrus _append_intbuf); a domain's own quota root is `domain!` alone.

/** One component → internal: `.` inside it becomes `^` (`fred.smith` → `fred^smith`). */
export function encodeComponent(c: string): string {
  return c.indexOf('.') < 0 ? c : c.replaceAll('.', '^');
}

/** One internal component → as written: `^` reads `.` (`fred^smith` → `fred.smith`). */
export function decodeComponent(c: string): string {
  return c.indexOf('^') < 0 ? c : c.replaceAll('^', '.');
}

/** Internal body → components written with `sep` (`user.fred^smith.sub`, '/' → `user/fred.smith/sub`). */
export function bodyToSeparated(body: string, sep: string): string {
  if (sep === '.') return body;
  return body.split('.').map(decodeComponent).join(sep);
}

/** Components written with `sep` → internal body (the inverse of bodyToSeparated). */
export function separatedToBody(text: string, sep: string): string {
  if (sep === '.') return text;
  return text.split(sep).map(encodeComponent).join('.');
}

/** `example.com!user.fred` → ['example.com', 'user.fred']; no `!` → [null, name]. */
export function splitDomain(internal: string): [string | null, string] {
  const bang = internal.indexOf('!');
  return bang < 0 ? [null, internal] : [internal.slice(0, bang), internal.slice(bang + 1)];
}

/** The inverse of splitDomain. */
export function joinDomain(domain: string | null, body: string): string {
  return domain === null ? body : `${domain}!${body}`;
}

/** An address or external name at its LAST `@` (Cyrus: the domain never holds one): [local, domain or null]. */
export function splitAddress(text: string): [string, string | null] {
  const at = text.lastIndexOf('@');
  return at < 0 ? [text, null] : [text.slice(0, at), text.slice(at + 1)];
}

/**
 * Is `domain` the defaultdomain? Compared ASCII case-insensitively (behaviour §2.2, deliberate
 * difference). An unset defaultdomain ('') matches nothing, not even an empty domain:
 * Cyrus's strcmpsafe() holds NULL and "" apart, so `fred@` stays qualified by "".
 */
export function isDefaultDomain(domain: string, defaultdomain: string): boolean {
  if (defaultdomain === '' || domain.length !== defaultdomain.length) return false;
  for (let i = 0; i < domain.length; i++) {
    let x = domain.charCodeAt(i);
    let y = defaultdomain.charCodeAt(i);
    if (x >= 0x41 && x <= 0x5a) x |= 0x20;
    if (y >= 0x41 && y <= 0x5a) y |= 0x20;
    if (x !== y) return false;
  }
  return true;
}
