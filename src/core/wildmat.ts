// Rich Salz's wildmat and the deny-list service match (behaviour §3.1), after Cyrus's
// lib/wildmat.c (DoMatch, with Lars Mathiesen's ABORT shortcut) and imap/userdeny_db.c.

const TRUE = 1;
const FALSE = 0;
const ABORT = -1;

/**
 * A `[...]` class at p[pi] (pi on the `[`) against the char code c: the index of its closing
 * `]` and whether c is in it; null when unterminated (the C code runs off the pattern there;
 * we say no match).
 */
function matchClass(p: string, pi: number, c: number): { end: number; matched: boolean } | null {
  const reverse = p[pi + 1] === '^';
  if (reverse) pi++;
  let matched = false;
  // A `]` or `-` right after `[` / `[^` is a literal.
  if (p[pi + 1] === ']' || p[pi + 1] === '-') {
    pi++;
    if (p.charCodeAt(pi) === c) matched = true;
  }
  for (let last = p.charCodeAt(pi); ++pi < p.length && p[pi] !== ']'; last = p.charCodeAt(pi)) {
    if (p[pi] === '-' && p[pi + 1] !== ']') {
      if (++pi >= p.length) return null;
      if (c <= p.charCodeAt(pi) && c >= last) matched = true;
    } else if (c === p.charCodeAt(pi)) {
      matched = true;
    }
  }
  if (pi >= p.length) return null;
  return { end: pi, matched: matched !== reverse };
}

/** DoMatch: TRUE, FALSE, or ABORT (no later star position can match either). */
function doMatch(t: string, ti: number, p: string, pi: number): number {
  for (; pi < p.length; ti++, pi++) {
    const pc = p[pi];
    if (ti >= t.length && pc !== '*') return ABORT;
    switch (pc) {
      case '\\':
        // Literal match with the next character; a trailing `\` matches nothing.
        pi++;
        if (pi >= p.length || t[ti] !== p[pi]) return FALSE;
        continue;
      case '?':
        continue;
      case '*': {
        while (p[++pi] === '*'); // consecutive stars act like one
        if (pi >= p.length) return TRUE; // trailing star matches everything
        while (ti < t.length) {
          const m = doMatch(t, ti++, p, pi);
          if (m !== FALSE) return m;
        }
        return ABORT;
      }
      case '[': {
        const r = matchClass(p, pi, t.charCodeAt(ti));
        if (r === null || !r.matched) return FALSE;
        pi = r.end;
        continue;
      }
      default:
        if (t[ti] !== pc) return FALSE;
        continue;
    }
  }
  return ti >= t.length ? TRUE : FALSE;
}

/** Rich Salz's wildmat: `*`, `?`, `[...]`, `[^...]`, ranges, `\` escapes. Compares UTF-16 code units. */
export function wildmat(text: string, pattern: string): boolean {
  if (pattern === '*') return true;
  return doMatch(text, 0, pattern, 0) === TRUE;
}

/**
 * True when the comma-separated pattern list denies `service` (Cyrus userdeny()): items are
 * trimmed, a leading `!` negates, and the FIRST pattern that matches decides — a negated
 * match allows. No match: not denied. (Cyrus's comment says right to left; its code and
 * ours go left to right, behaviour §3.1.)
 */
export function servicesDeny(patterns: string, service: string): boolean {
  for (const raw of patterns.split(',')) {
    let pat = raw.trim();
    if (pat === '') continue;
    const not = pat[0] === '!';
    if (not) pat = pat.slice(1).trim();
    if (wildmat(service, pat)) return !not;
  }
  return false;
}
