import { describe, it, expect } from 'vitest';
import { isValidMutf7, mutf7ToUtf8, utf8ToMutf7, Mutf7Error } from '../../src/core/mutf7';

describe('utf8ToMutf7', () => {
  it.each([
    ['', ''],
    ['INBOX', 'INBOX'],
    ['café', 'caf&AOk-'],
    ['Übung', '&ANw-bung'],
    ['&', '&-'],
    ['a&b', 'a&-b'],
    ['~peter/mail/台北/日本語', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'], // RFC 3501 §5.1.3
    ['😀', '&2D3eAA-'],
    ['é&é', '&AOk-&-&AOk-'],
    ['a\u007fb', 'a&AH8-b'],
    ['a\tb', 'a&AAk-b'],
  ])('%j → %j', (text, encoded) => {
    expect(utf8ToMutf7(text)).toBe(encoded);
    expect(mutf7ToUtf8(encoded)).toBe(text);
    expect(isValidMutf7(encoded)).toBe(true);
  });

  it('refuses a lone surrogate', () => {
    expect(() => utf8ToMutf7('a\ud800b')).toThrow(Mutf7Error);
    expect(() => utf8ToMutf7('\udc00')).toThrow(Mutf7Error);
  });

  it('round-trips a mixed string', () => {
    const s = 'Ärger & Freude/日本語.x 😀 end';
    expect(mutf7ToUtf8(utf8ToMutf7(s))).toBe(s);
  });
});

describe('mutf7ToUtf8 and isValidMutf7 reject what is not canonical', () => {
  it.each([
    ['&', 'unterminated'],
    ['&AOk', 'unterminated run'],
    ['caf\u00e9', 'non-ASCII'],
    ['a\tb', 'control character'],
    ['&AGE-', 'printable ASCII encoded'],
    ['&AOk-&AOk-', 'two adjacent runs'],
    ['&AOl-', 'padding bits not zero'],
    ['&AOkA-', 'a dangling sextet'],
    ['&AO.k-', 'not base64'],
    ['&AO/k-', 'standard base64 slash'],
    ['&2D0-', 'lone high surrogate'],
    ['&3gA-', 'lone low surrogate'],
  ])('%j (%s)', (s) => {
    expect(() => mutf7ToUtf8(s)).toThrow(Mutf7Error);
    expect(isValidMutf7(s)).toBe(false);
  });

  it('accepts plain ASCII and the & escape', () => {
    expect(isValidMutf7('shared.pub')).toBe(true);
    expect(isValidMutf7('a&-b')).toBe(true);
    expect(isValidMutf7('')).toBe(true);
    expect(mutf7ToUtf8('&-&AOk-')).toBe('&é');
  });
});
