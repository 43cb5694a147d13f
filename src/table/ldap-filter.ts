// A search filter read as Postfix's libldap reads it (ldap_pvt_put_filter() in OpenLDAP's
// filter.c): white space after a `(`, around the filters of an `&`, `|` or `!` list and
// before a filter without parentheses is skipped, so `(| (mail=%s)\n (uid=%u))`, which a
// .cf file's continuation lines make, is a filter; ldapts's parser takes no white space
// there, so the filter is first rewritten without it. White space inside a simple filter's
// value is the server's to judge, and stays.
import { FilterParser, type Filter } from 'ldapts';

const isLdapSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n';

/** The index of the `)` that closes the `(` just before `i` (escapes honoured), or -1 (find_right_paren()). */
function rightParen(s: string, i: number): number {
  let balance = 1;
  let escape = false;
  for (; i < s.length; i++) {
    if (!escape && s[i] === '(') balance++;
    else if (!escape && s[i] === ')') balance--;
    if (balance === 0) return i;
    escape = s[i] === '\\' && !escape;
  }
  return -1;
}

/** The filters of an `&`, `|` or `!` list, each rewritten (put_filter_list()); null: libldap refuses it. */
function list(s: string, op: string): string | null {
  let out = '';
  let i = 0;
  let filters = 0;
  while (i < s.length) {
    while (isLdapSpace(s[i])) i++;
    if (i >= s.length) break;
    const end = rightParen(s, i + 1);
    if (end < 0) return null;
    const f = rewrite(s.slice(i, end + 1));
    if (f === null) return null;
    out += f;
    filters++;
    i = end + 1;
    if (op === '!') break;
  }
  if (op === '!' && (filters === 0 || i < s.length)) return null;
  return out;
}

/** One filter without the white space libldap skips; null: libldap refuses it (LDAP_FILTER_ERROR). */
export function rewrite(s: string): string | null {
  let i = 0;
  while (s[i] === ' ') i++;
  if (i >= s.length) return null;
  // a filter without parentheses is the whole rest (put_simple_filter())
  if (s[i] !== '(') return `(${s.slice(i)})`;
  i++;
  while (isLdapSpace(s[i])) i++;
  const c = s[i];
  if (c === '(' || c === undefined) return null;
  let out: string;
  let end: number;
  if (c === '&' || c === '|' || c === '!') {
    end = rightParen(s, i + 1);
    const inner = end < 0 ? null : list(s.slice(i + 1, end), c);
    if (inner === null) return null;
    out = `(${c}${inner})`;
  } else {
    end = rightParen(s, i);
    if (end < 0) return null;
    out = `(${s.slice(i, end)})`;
  }
  // nothing may follow the filter (`parens || *str` in ldap_pvt_put_filter())
  return end + 1 === s.length ? out : null;
}

/** The filter as libldap would send it, parsed; throws when libldap would refuse it. */
export function parseFilter(text: string): Filter {
  const f = rewrite(text);
  if (f === null) throw new Error('libldap would refuse it');
  return FilterParser.parseString(f);
}
