import { describe, it, expect } from 'vitest';
import { servicesDeny, wildmat } from '../../src/core/wildmat';

describe('wildmat', () => {
  it.each([
    ['smmapd', '*', true],
    ['', '*', true],
    ['', '', true],
    ['smmapd', '', false],
    ['smmapd', 'smmapd', true],
    ['smmapd', 'SMMAPD', false],
    ['smmapd', 'smm?pd', true],
    ['smmapd', 'smmapd?', false],
    ['smmapd', 'smm*', true],
    ['smmapd', '*pd', true],
    ['smmapd', '*m*p*', true],
    ['smmapd', 's**d', true],
    ['smmapd', '*x*', false],
    ['smmapd', '[rs]mmapd', true],
    ['smmapd', '[a-z]mmapd', true],
    ['smmapd', '[^a-z]mmapd', false],
    ['Smmapd', '[^a-z]mmapd', true],
    ['smmapd', '[a-r]mmapd', false],
    ['smmapd', 'sm[a-m]apd', true],
    [']', '[]]', true],
    ['-', '[-]', true],
    ['-', '[a-]', true],
    ['a', '[a-]', true],
    ['b', '[a-]', false],
    ['x', '[^]]', true],
    [']', '[^]]', false],
    ['*', '\\*', true],
    ['a', '\\*', false],
    ['a?', 'a\\?', true],
    ['ab', 'a\\?', false],
    ['a', 'a\\', false], // trailing backslash matches nothing
    ['a', '[abc', false], // unterminated class matches nothing
    ['a', '[a-', false],
    ['imapd', 'imap*', true],
    ['pop3d', 'imap*', false],
  ] as const)('%j against %j → %s', (text, pattern, want) => {
    expect(wildmat(text, pattern)).toBe(want);
  });

  it('keeps Lars Mathiesen\'s ABORT example', () => {
    const p = '-*-*-*-*-*-*-12-*-*-*-m-*-*-*';
    expect(wildmat('-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1', p)).toBe(true);
    expect(wildmat('-adobe-courier-bold-o-normal--12-120-75-75-X-70-iso8859-1', p)).toBe(false);
    expect(wildmat('abcxxxxx', '*a*b*c*d')).toBe(false);
  });

  it('fails a long pathological pattern quickly', () => {
    const text = 'a'.repeat(5000);
    const start = Date.now();
    expect(wildmat(text, '*a*a*a*a*a*a*a*a*b')).toBe(false);
    expect(Date.now() - start).toBeLessThan(1000);
  });
});

describe('servicesDeny (behaviour §3.1)', () => {
  it.each([
    ['*', 'smmapd', true],
    ['', 'smmapd', false],
    ['imapd', 'smmapd', false],
    ['imapd,smmapd', 'smmapd', true],
    [' imapd , smmapd ', 'smmapd', true],
    ['!smmapd,*', 'smmapd', false],
    ['!smmapd,*', 'imapd', true],
    ['*,!smmapd', 'smmapd', true], // the FIRST match decides, left to right
    ['!smmapd', 'smmapd', false],
    ['!imapd', 'smmapd', false], // no match: not denied
    ['!imap*,*', 'imapd', false],
    ['!imap*,*', 'smmapd', true],
    ['! smmapd, *', 'smmapd', false],
    ['pop3d,,smm*', 'smmapd', true],
    ['s[lm]mapd', 'smmapd', true],
    ['smmapd\\*', 'smmapd', false],
  ] as const)('%j for %j → %s', (patterns, service, want) => {
    expect(servicesDeny(patterns, service)).toBe(want);
  });
});
