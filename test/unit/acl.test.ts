import { describe, it, expect } from 'vitest';
import {
  AclError, ALL_RIGHTS, anonymousMayLookup, anonymousMayPost, deleteAclEntry, formatAcl, initialAcl,
  maskToRights, parseAcl, rightsToMask, setAclEntry,
} from '../../src/core/acl';

describe('parseAcl / formatAcl', () => {
  it('round-trips identifier\\trights\\t pairs', () => {
    const acl = 'anyone\tlrs\tfred\tlrswipkxtecdan\t-anyone\tp\t';
    expect(parseAcl(acl)).toEqual([['anyone', 'lrs'], ['fred', 'lrswipkxtecdan'], ['-anyone', 'p']]);
    expect(formatAcl(parseAcl(acl))).toBe(acl);
  });
  it('handles the empty ACL and ignores a trailing fragment', () => {
    expect(parseAcl('')).toEqual([]);
    expect(formatAcl([])).toBe('');
    expect(parseAcl('anyone\tlrs\tfred\tlr')).toEqual([['anyone', 'lrs']]);
    expect(parseAcl('anyone')).toEqual([]);
  });
});

describe('anonymous rights (behaviour §3.3)', () => {
  it.each([
    ['anyone\tlrsp\t', true, true],
    ['anyone\tlrs\t', false, true],
    ['', false, false],
    ['fred\tlrswipkxtecdan\t', false, false],
    ['anonymous\tp\t', true, false],
    ['anyone\tl\tanonymous\tp\t', true, true],
    ['anyone\tlrsp\t-anyone\tp\t', false, true],
    ['anyone\tlrsp\t-anonymous\tl\t', true, false],
    ['-anyone\tp\tanyone\tlrsp\t', false, true], // order does not matter
    ['Anyone\tlrsp\t', false, false], // identifiers compare exactly
    ['anyone\tlrsp', false, false], // an unterminated entry is ignored
    ['group:staff\tlrsp\t', false, false],
    ['anyone\tpq\t', true, false], // unknown letters are ignored when reading
  ])('%j: post %s, lookup %s', (acl, post, lookup) => {
    expect(anonymousMayPost(acl)).toBe(post);
    expect(anonymousMayLookup(acl)).toBe(lookup);
  });
});

describe('rights masks (cyrus_acl_strtomask / masktostr)', () => {
  it.each([
    ['srl', 'lrs'],
    ['lrswipkxtea', 'lrswipkxtecda'],
    ['lrswipkxtecdan', 'lrswipkxtecdan'],
    ['c', 'kxc'], // legacy macro: all its member rights
    ['d', 'ted'],
    ['kc', 'kc'], // a macro with one member given adds nothing
    ['x', 'xc'],
    ['n0129', 'n0129'],
    ['9a', 'a9'],
    ['', ''],
  ])('%j → %j', (rights, canonical) => {
    expect(maskToRights(rightsToMask(rights))).toBe(canonical);
  });
  it('strict mode names the bad right as Cyrus does', () => {
    expect(() => rightsToMask('lrq', true)).toThrow('The q right is not supported');
    expect(() => rightsToMask('L', true)).toThrow(AclError);
  });
});

describe('setAclEntry (SETACL)', () => {
  it('sets, in canonical order', () => {
    expect(setAclEntry('', 'fred', 'srl')).toBe('fred\tlrs\t');
    expect(setAclEntry('anyone\tlrs\t', 'anyone', 'lrsp')).toBe('anyone\tlrsp\t');
  });
  it('accepts cyradm keywords', () => {
    expect(setAclEntry('', 'x', 'none')).toBe('');
    expect(setAclEntry('', 'x', 'read')).toBe('x\tlrs\t');
    expect(setAclEntry('', 'x', 'post')).toBe('x\tlrsp\t');
    expect(setAclEntry('', 'x', 'append')).toBe('x\tlrsip\t');
    expect(setAclEntry('', 'x', 'write')).toBe('x\tlrswipkxtecd\t');
    expect(setAclEntry('', 'x', 'delete')).toBe('x\tlrxtecd\t');
    expect(setAclEntry('', 'x', 'all')).toBe('x\tlrswipkxtecda\t');
  });
  it('+letters adds, -letters removes', () => {
    expect(setAclEntry('anyone\tlrs\t', 'anyone', '+p')).toBe('anyone\tlrsp\t');
    expect(setAclEntry('anyone\tlrsp\t', 'anyone', '-ps')).toBe('anyone\tlr\t');
    expect(setAclEntry('', 'anyone', '+p')).toBe('anyone\tp\t');
    expect(setAclEntry('', 'anyone', '-p')).toBe('');
  });
  it('removes the entry when nothing is left, or with "" / none', () => {
    expect(setAclEntry('anyone\tlrs\tfred\tl\t', 'anyone', '-lrs')).toBe('fred\tl\t');
    expect(setAclEntry('anyone\tlrs\tfred\tl\t', 'anyone', '')).toBe('fred\tl\t');
    expect(setAclEntry('anyone\tlrs\tfred\tl\t', 'anyone', 'none')).toBe('fred\tl\t');
    expect(setAclEntry('fred\tl\t', 'anyone', 'none')).toBe('fred\tl\t');
  });
  it('keeps an entry in place and appends a new one', () => {
    const acl = 'a\tl\tb\tl\tc\tl\t';
    expect(setAclEntry(acl, 'b', 'lrs')).toBe('a\tl\tb\tlrs\tc\tl\t');
    expect(setAclEntry(acl, 'd', 'p')).toBe(`${acl}d\tp\t`);
  });
  it('handles negative entries: the identifier starts with -, the rights are separate', () => {
    expect(setAclEntry('anyone\tlrsp\t', '-anyone', 'p')).toBe('anyone\tlrsp\t-anyone\tp\t');
    expect(setAclEntry('anyone\tlrsp\t-anyone\tp\t', '-anyone', '+l')).toBe('anyone\tlrsp\t-anyone\tlp\t');
    expect(setAclEntry('anyone\tlrsp\t-anyone\tp\t', '-anyone', '-p')).toBe('anyone\tlrsp\t');
  });
  it('canonicalises anyone / anonymous', () => {
    expect(setAclEntry('anyone\tl\t', 'Anyone', 'lrs')).toBe('anyone\tlrs\t');
    expect(setAclEntry('', '-ANONYMOUS', 'p')).toBe('-anonymous\tp\t');
    expect(setAclEntry('', 'Fred', 'l')).toBe('Fred\tl\t');
  });
  it('rejects bad input with a one-line AclError', () => {
    expect(() => setAclEntry('', 'fred', 'lrq')).toThrow('The q right is not supported');
    expect(() => setAclEntry('', 'fred', '+X')).toThrow(AclError);
    expect(() => setAclEntry('', '', 'l')).toThrow(AclError);
    expect(() => setAclEntry('', '-', 'l')).toThrow(AclError);
    expect(() => setAclEntry('', 'fr\ted', 'l')).toThrow(AclError);
    expect(() => setAclEntry('', 'fred\n', 'l')).toThrow(AclError);
  });
});

describe('deleteAclEntry (DELETEACL)', () => {
  it('removes an entry; an absent one is fine', () => {
    expect(deleteAclEntry('anyone\tlrs\tfred\tl\t', 'anyone')).toBe('fred\tl\t');
    expect(deleteAclEntry('fred\tl\t', 'anyone')).toBe('fred\tl\t');
    expect(deleteAclEntry('', 'anyone')).toBe('');
    expect(deleteAclEntry('anyone\tlrs\t-anyone\tp\t', '-anyone')).toBe('anyone\tlrs\t');
  });
});

describe('initialAcl (mboxlist_create_acl)', () => {
  it('a user INBOX gives its owner all rights', () => {
    expect(ALL_RIGHTS).toBe('lrswipkxtecdan');
    expect(initialAcl('fred', true, null)).toBe('fred\tlrswipkxtecdan\t');
    expect(initialAcl('fred@example.com', true, 'anyone\tlrs\t')).toBe('fred@example.com\tlrswipkxtecdan\t');
  });
  it('any other folder copies the nearest existing ancestor', () => {
    expect(initialAcl('fred', false, 'fred\tlrs\tbarney\tl\t')).toBe('fred\tlrs\tbarney\tl\t');
    expect(initialAcl(null, false, 'anyone\tlrsp\t')).toBe('anyone\tlrsp\t');
    expect(initialAcl(null, false, '')).toBe('');
  });
  it('with no ancestor: owner all rights for a user folder, anyone lrs for a shared one', () => {
    expect(initialAcl('fred', false, null)).toBe('fred\tlrswipkxtecdan\t');
    expect(initialAcl(null, false, null)).toBe('anyone\tlrs\t');
  });
});
