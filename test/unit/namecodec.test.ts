// The one codec for name components and domains (behaviour §2) that recipient keys, admin
// names, IMAP server names and smmapctl listings all go through.
import { describe, expect, it } from 'vitest';
import {
  bodyToSeparated, decodeComponent, encodeComponent, isDefaultDomain, joinDomain, separatedToBody, splitAddress, splitDomain,
} from '../../src/core/namecodec';

describe('name codec', () => {
  it('a . inside a component is ^ inside the store, and back', () => {
    expect(encodeComponent('fred.smith')).toBe('fred^smith');
    expect(encodeComponent('fred')).toBe('fred');
    expect(decodeComponent('a^b^c')).toBe('a.b.c');
    for (const c of ['x', 'a.b', '.lead', 'trail.', 'a..b']) expect(decodeComponent(encodeComponent(c))).toBe(c);
  });

  it('bodies with another separator, both ways', () => {
    expect(bodyToSeparated('user.fred^smith.a^b', '/')).toBe('user/fred.smith/a.b');
    expect(bodyToSeparated('user.fred^smith', '.')).toBe('user.fred^smith');
    expect(separatedToBody('user/fred.smith/a.b', '/')).toBe('user.fred^smith.a^b');
    expect(separatedToBody('user.fred^smith', '.')).toBe('user.fred^smith');
  });

  it('domains: ! in internal names, the last @ in addresses', () => {
    expect(splitDomain('example.com!user.fred')).toEqual(['example.com', 'user.fred']);
    expect(splitDomain('user.fred')).toEqual([null, 'user.fred']);
    expect(splitDomain('example.com!')).toEqual(['example.com', '']);
    expect(joinDomain('example.com', 'user.fred')).toBe('example.com!user.fred');
    expect(joinDomain(null, 'user.fred')).toBe('user.fred');
    expect(splitAddress('fred@other.test@example.org')).toEqual(['fred@other.test', 'example.org']);
    expect(splitAddress('fred')).toEqual(['fred', null]);
    expect(splitAddress('fred@')).toEqual(['fred', '']);
  });

  it('the default domain: ASCII case-insensitive, unset matches nothing', () => {
    expect(isDefaultDomain('EXAMPLE.org', 'example.ORG')).toBe(true);
    expect(isDefaultDomain('', '')).toBe(false);
    expect(isDefaultDomain('example.com', 'example.org')).toBe(false);
  });
});
