import { describe, expect, it } from 'vitest';
import { domainOf, fromServerName, toServerName, type ServerNaming } from '../../src/store/imap-names';

const netnews: ServerNaming = { separator: '.', domains: false, defaultdomain: '' };
const unix: ServerNaming = { separator: '/', domains: false, defaultdomain: '' };
const unixDom: ServerNaming = { separator: '/', domains: true, defaultdomain: 'example.org' };
const netDom: ServerNaming = { separator: '.', domains: true, defaultdomain: '' };

describe('internal → server names', () => {
  it('netnews separator: as stored, ^ stays', () => {
    expect(toServerName('user.fred^smith.sub', netnews)).toBe('user.fred^smith.sub');
    expect(toServerName('user.caf&AOk-', netnews)).toBe('user.caf&AOk-');
  });

  it('unix separator: . becomes /, ^ becomes .', () => {
    expect(toServerName('user.fred^smith.a^b', unix)).toBe('user/fred.smith/a.b');
    expect(toServerName('shared.pub', unix)).toBe('shared/pub');
  });

  it('a component holding the server separator cannot exist there', () => {
    expect(toServerName('user.a/b', unix)).toBeNull();
    expect(toServerName('user.a/b', netnews)).toBe('user.a/b');
  });

  it('with domains an @ inside a name cannot steer into another domain: no such mailbox', () => {
    // fred@other.test@example.org (defaultdomain example.org) resolves to user.fred@other^test.
    expect(toServerName('user.fred@other^test', unixDom)).toBeNull();
    expect(toServerName('user.fred@other^test', netDom)).toBeNull();
    expect(toServerName('example.com!user.a@b', netDom)).toBeNull();
    expect(toServerName('user.fred@other^test', netnews)).toBe('user.fred@other^test'); // no domains: just a character
  });

  it('domains: name@domain, and an empty domain names nothing', () => {
    expect(toServerName('example.com!user.bob.in^ner', unixDom)).toBe('user/bob/in.ner@example.com');
    expect(toServerName('example.com!user.bob', netDom)).toBe('user.bob@example.com');
    expect(toServerName('!user.fred', netDom)).toBeNull();
    // without virtdomains a ! is just a character
    expect(toServerName('user.a!b', netnews)).toBe('user.a!b');
  });
});

describe('server → internal names', () => {
  it('inverts toServerName', () => {
    for (const [n, names] of [
      [netnews, ['user.fred^smith.sub', 'shared.pub', 'user.caf&AOk-']],
      [unix, ['user.fred^smith.a^b', 'shared.pub']],
      [unixDom, ['example.com!user.bob.in^ner', 'user.fred', 'example.com!shared.x']],
    ] as const) {
      for (const name of names) expect(fromServerName(toServerName(name, n)!, n)).toBe(name);
    }
  });

  it('domain roots and the default domain', () => {
    expect(fromServerName('@example.com', unixDom)).toBe('example.com!');
    expect(fromServerName('user/joe@example.org', unixDom)).toBe('user.joe');
    expect(fromServerName('user/joe@EXAMPLE.ORG', unixDom)).toBe('user.joe');
    expect(fromServerName('user/a@b@example.com', unixDom)).toBe('example.com!user.a@b');
  });

  it('@ is not a domain without virtdomains', () => {
    expect(fromServerName('user.a@b', netnews)).toBe('user.a@b');
  });

  it('domainOf', () => {
    expect(domainOf('example.com!user.bob', true)).toBe('example.com');
    expect(domainOf('user.bob', true)).toBe('');
    expect(domainOf('a!b', false)).toBe('');
  });
});
