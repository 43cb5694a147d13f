import { describe, it, expect } from 'vitest';
import {
  isUserInbox, NameError, ownerOf, parentOf, quotaRootCandidates, splitDomain, toExternal, toInternal,
  type NameOptions,
} from '../../src/core/mboxname';

const slash: NameOptions = { separator: '/', virtdomains: 'off', defaultdomain: '' };
const dot: NameOptions = { separator: '.', virtdomains: 'off', defaultdomain: '' };
const slashDom: NameOptions = { separator: '/', virtdomains: 'on', defaultdomain: 'example.org' };
const dotDom: NameOptions = { separator: '.', virtdomains: 'userid', defaultdomain: 'example.org' };

describe('toInternal / toExternal', () => {
  it.each([
    // [options, external, internal]
    [slash, 'user/fred', 'user.fred'],
    [slash, 'user/fred.smith/sub', 'user.fred^smith.sub'],
    [slash, 'user/fred/a.b/c', 'user.fred.a^b.c'],
    [slash, 'shared/pub', 'shared.pub'],
    [slash, 'shared.pub', 'shared^pub'],
    [slash, 'user/fred/caf&AOk-', 'user.fred.caf&AOk-'],
    [slash, 'user/fred/a&-b', 'user.fred.a&-b'],
    [dot, 'user.fred', 'user.fred'],
    [dot, 'user.fred^smith.sub', 'user.fred^smith.sub'],
    [dot, 'shared.pub', 'shared.pub'],
    [dot, 'user.fred.caf&AOk-', 'user.fred.caf&AOk-'],
    [slashDom, 'user/fred@example.com', 'example.com!user.fred'],
    [slashDom, 'user/fred.smith/sub@example.com', 'example.com!user.fred^smith.sub'],
    [slashDom, 'shared/pub@example.com', 'example.com!shared.pub'],
    [slashDom, '@example.com', 'example.com!'],
    [slashDom, 'user/fred', 'user.fred'],
    [dotDom, 'user.fred@example.com', 'example.com!user.fred'],
    [dotDom, 'user.fred^smith.sub@example.com', 'example.com!user.fred^smith.sub'],
    [dotDom, '@example.com', 'example.com!'],
  ] as const)('%#: %s ↔ %s', (o, external, internal) => {
    expect(toInternal(external, o)).toBe(internal);
    expect(toExternal(internal, o)).toBe(external);
  });

  it('drops a domain equal to defaultdomain, case-insensitively', () => {
    expect(toInternal('user/fred@example.org', slashDom)).toBe('user.fred');
    expect(toInternal('user/fred@EXAMPLE.Org', slashDom)).toBe('user.fred');
    expect(toInternal('user.fred@example.org', dotDom)).toBe('user.fred');
    expect(toExternal('example.org!user.fred', slashDom)).toBe('user/fred');
    expect(() => toInternal('@example.org', slashDom)).toThrow(NameError);
  });

  it('splits at the last @', () => {
    expect(toInternal('user/a@b@example.com', slashDom)).toBe('example.com!user.a@b');
  });

  it('encodes UTF-8 components to modified UTF-7', () => {
    expect(toInternal('user/fred/café', slash)).toBe('user.fred.caf&AOk-');
    expect(toInternal('user.fred.Ärger & Co', dot)).toBe('user.fred.&AMQ-rger &- Co');
    expect(toInternal('shared/日本語.x', slash)).toBe('shared.&ZeVnLIqe-^x');
  });

  it.each([
    [slash, ''],
    [slash, 'user//fred'],
    [slash, '/user/fred'],
    [slash, 'user/fred/'],
    [dot, 'user..fred'],
    [dot, 'user.fred.'],
    [slash, 'user/fred^smith'], // ^ is invalid with "/"
    [dot, 'user.a/b'], // / is never part of a component
    [slash, 'user/fred\x01'],
    [slash, 'user/fred\x7f'],
    [slash, 'user/fred@example.com'], // virtdomains off
    [slashDom, 'user/fred@'],
    [slashDom, 'user/fred@a!b'],
    [slash, 'user/fred!x'],
    [slash, 'user/a&b'], // not modified UTF-7
    [slash, 'user/&AGE-'],
    [slash, 'user'],
    [slashDom, 'user@example.com'],
  ] as const)('%#: rejects %j', (o, external) => {
    expect(() => toInternal(external, o)).toThrow(NameError);
  });

  it('toExternal refuses a bare default-domain root', () => {
    expect(() => toExternal('', slash)).toThrow(NameError);
    expect(toExternal('example.com!', dot)).toBe('@example.com');
  });
});

describe('quotaRootCandidates (quota_findroot)', () => {
  it.each([
    ['user.fred.sub', ['user.fred.sub', 'user.fred', 'user']],
    ['user.fred', ['user.fred', 'user']],
    ['user.fred^smith.a^b', ['user.fred^smith.a^b', 'user.fred^smith', 'user']],
    ['shared.pub', ['shared.pub', 'shared']],
    ['shared', ['shared']],
    ['example.com!user.fred.sub', ['example.com!user.fred.sub', 'example.com!user.fred', 'example.com!user', 'example.com!']],
    ['example.com!shared', ['example.com!shared', 'example.com!']],
    ['example.com!', ['example.com!']],
    ['', []],
  ])('%j', (name, want) => {
    expect(quotaRootCandidates(name)).toEqual(want);
  });
});

describe('parentOf', () => {
  it.each([
    ['user.fred.sub.deep', 'user.fred.sub'],
    ['user.fred.sub', 'user.fred'],
    ['user.fred', null],
    ['user', null],
    ['shared.pub.x', 'shared.pub'],
    ['shared.pub', 'shared'],
    ['shared', null],
    ['example.com!user.fred.sub', 'example.com!user.fred'],
    ['example.com!user.fred', null],
    ['example.com!shared.pub', 'example.com!shared'],
    ['example.com!shared', null],
    ['example.com!', null],
  ])('%j → %j', (name, want) => {
    expect(parentOf(name)).toBe(want);
  });
});

describe('ownerOf / isUserInbox / splitDomain', () => {
  it.each([
    ['user.fred', 'fred', true],
    ['user.fred.sub', 'fred', false],
    ['user.fred^smith.sub', 'fred.smith', false],
    ['example.com!user.fred', 'fred@example.com', true],
    ['example.com!user.fred.x.y', 'fred@example.com', false],
    ['shared.pub', null, false],
    ['user', null, false],
    ['user.', null, false],
    ['username.x', null, false],
    ['example.com!', null, false],
    ['example.com!shared', null, false],
  ])('%j: owner %j, INBOX %s', (name, owner, inbox) => {
    expect(ownerOf(name)).toBe(owner);
    expect(isUserInbox(name)).toBe(inbox);
  });
  it('splits at the first !', () => {
    expect(splitDomain('example.com!user.fred')).toEqual(['example.com', 'user.fred']);
    expect(splitDomain('user.fred')).toEqual([null, 'user.fred']);
    expect(splitDomain('example.com!')).toEqual(['example.com', '']);
  });
});
