// IMAP modified UTF-7 (RFC 3501 §5.1.3), the charset of Cyrus mailbox names (behaviour §2.3).
// Printable US-ASCII (0x20–0x7e) stands for itself except `&`, which is written `&-`;
// every other character goes, as UTF-16, into a `&…-` run of modified base64 (`,` for
// `/`, no padding). The decoder is strict, as Cyrus's mboxname_policycheck is: no
// printable ASCII inside a run, no two adjacent runs, zero padding bits. So a string
// decodes only if it is the one canonical encoding of its text.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';

/** Modified base64 digit values by char code, -1 for anything else. */
const DIGIT: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) t[ALPHABET.charCodeAt(i)] = i;
  return t;
})();

export class Mutf7Error extends Error {}

function isPrintable(c: number): boolean {
  return c >= 0x20 && c <= 0x7e;
}

/** One base64 run for UTF-16 units `units`, without the `&` and `-`. */
function encodeRun(units: number[]): string {
  let out = '';
  let bits = 0;
  let nbits = 0;
  for (const u of units) {
    bits = (bits << 16) | u;
    nbits += 16;
    while (nbits >= 6) {
      nbits -= 6;
      out += ALPHABET[(bits >> nbits) & 0x3f];
    }
    bits &= (1 << nbits) - 1;
  }
  if (nbits > 0) out += ALPHABET[(bits << (6 - nbits)) & 0x3f];
  return out;
}

/**
 * Text (a JS string, i.e. Unicode) → modified UTF-7. Throws Mutf7Error on a lone
 * surrogate, which no UTF-8 input can hold.
 */
export function utf8ToMutf7(s: string): string {
  let out = '';
  let run: number[] | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isPrintable(c)) {
      if (run !== null) {
        out += `&${encodeRun(run)}-`;
        run = null;
      }
      out += c === 0x26 ? '&-' : s[i];
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) throw new Mutf7Error('lone surrogate in text');
      (run ??= []).push(c, next);
      i++;
      continue;
    }
    (run ??= []).push(c);
  }
  if (run !== null) out += `&${encodeRun(run)}-`;
  return out;
}

/** A decoding failure, returned rather than thrown so that validation stays cheap. */
interface Failure {
  readonly error: string;
}

function fail(error: string): Failure {
  return { error };
}

/** Decode the run s[from, to) (between `&` and `-`) into UTF-16 units. */
function decodeRun(s: string, from: number, to: number): number[] | Failure {
  const units: number[] = [];
  let bits = 0;
  let nbits = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    const d = c < 128 ? DIGIT[c]! : -1;
    if (d < 0) return fail(`invalid modified base64 character ${JSON.stringify(s[i])}`);
    bits = ((bits << 6) | d) & 0x3fffff;
    nbits += 6;
    if (nbits >= 16) {
      nbits -= 16;
      units.push((bits >> nbits) & 0xffff);
    }
  }
  if (nbits >= 6 || (bits & ((1 << nbits) - 1)) !== 0) return fail('modified base64 run does not end on a character');
  return units;
}

/** UTF-16 units → text, checking surrogate pairs and that nothing printable was encoded. */
function unitsToText(units: number[]): string | Failure {
  let out = '';
  for (let i = 0; i < units.length; i++) {
    const u = units[i]!;
    if (isPrintable(u)) return fail('printable ASCII inside a modified base64 run');
    if (u >= 0xd800 && u <= 0xdbff) {
      const lo = units[i + 1];
      if (lo === undefined || lo < 0xdc00 || lo > 0xdfff) return fail('unpaired surrogate');
      out += String.fromCharCode(u, lo);
      i++;
    } else if (u >= 0xdc00 && u <= 0xdfff) {
      return fail('unpaired surrogate');
    } else {
      out += String.fromCharCode(u);
    }
  }
  return out;
}

function decode(s: string): string | Failure {
  let out = '';
  let lastRunEnd = -2; // index just past the `-` of the last base64 run (adjacency check)
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isPrintable(c)) return fail(`character U+${c.toString(16).padStart(4, '0')} must be encoded`);
    if (c !== 0x26) {
      out += s[i];
      continue;
    }
    const end = s.indexOf('-', i + 1);
    if (end < 0) return fail('unterminated modified base64 run');
    if (end === i + 1) {
      out += '&';
    } else {
      if (lastRunEnd === i) return fail('two adjacent modified base64 runs');
      const units = decodeRun(s, i + 1, end);
      if (!Array.isArray(units)) return units;
      const text = unitsToText(units);
      if (typeof text !== 'string') return text;
      out += text;
      lastRunEnd = end + 1;
    }
    i = end;
  }
  return out;
}

/** Modified UTF-7 → text. Throws Mutf7Error when `s` is not valid (canonical) modified UTF-7. */
export function mutf7ToUtf8(s: string): string {
  const r = decode(s);
  if (typeof r !== 'string') throw new Mutf7Error(r.error);
  return r;
}

/** True when `s` is valid modified UTF-7 (the canonical encoding of some text). */
export function isValidMutf7(s: string): boolean {
  let amp = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isPrintable(c)) return false;
    if (c === 0x26) amp = true;
  }
  return !amp || typeof decode(s) === 'string';
}
