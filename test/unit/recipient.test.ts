import { describe, it, expect } from 'vitest';
import { decodeKey, resolveRecipient, type ResolveOptions } from '../../src/core/recipient';

const base: ResolveOptions = {
  virtdomains: 'off',
  defaultdomain: '',
  postuser: '',
  downcase: true,
  separator: '/',
  skipPlus: false,
};

function opts(o: Partial<ResolveOptions> = {}): ResolveOptions {
  return { ...base, ...o };
}

const SEPS = ['/', '.'] as const;

describe('decodeKey', () => {
  it('decodes valid UTF-8', () => {
    expect(decodeKey(Buffer.from('fred+café', 'utf8'))).toBe('fred+café');
    expect(decodeKey(Buffer.alloc(0))).toBe('');
  });
  it('refuses bytes that are not UTF-8', () => {
    expect(decodeKey(Buffer.from([0x66, 0xff]))).toBeNull();
    expect(decodeKey(Buffer.from([0xc3]))).toBeNull(); // truncated sequence
    expect(decodeKey(Buffer.from([0xc0, 0xaf]))).toBeNull(); // overlong '/'
    expect(decodeKey(Buffer.from([0xed, 0xa0, 0x80]))).toBeNull(); // encoded surrogate
  });
});

describe('resolveRecipient: behaviour §4 keys (virtdomains off)', () => {
  for (const separator of SEPS) {
    const o = opts({ separator });
    it(`separator ${separator}`, () => {
      expect(resolveRecipient('fred', o)).toEqual({ userid: 'fred', mailbox: 'user.fred' });
      expect(resolveRecipient('fred@example.com', o)).toEqual({ userid: 'fred', mailbox: 'user.fred' });
      expect(resolveRecipient('Fred', o)).toEqual({ userid: 'fred', mailbox: 'user.fred' });
      expect(resolveRecipient('fred+sub', o)).toEqual({ userid: 'fred', mailbox: 'user.fred.sub' });
      expect(resolveRecipient('fred+Sub', o)).toEqual({ userid: 'fred', mailbox: 'user.fred.Sub' });
      expect(resolveRecipient('fred+Mixed', o)).toEqual({ userid: 'fred', mailbox: 'user.fred.Mixed' });
      expect(resolveRecipient('Upper', o)).toEqual({ userid: 'upper', mailbox: 'user.upper' });
      expect(resolveRecipient('', o)).toBeNull();
      expect(resolveRecipient('fred@', o)).toEqual({ userid: 'fred', mailbox: 'user.fred' });
    });
  }
  it('+shared.pub is the shared folder shared.pub with the netnews separator', () => {
    expect(resolveRecipient('+shared.pub', opts({ separator: '.' }))).toEqual({ userid: null, mailbox: 'shared.pub' });
  });
  it('with "/" the same key names the top-level folder "shared.pub"; +shared/pub is shared.pub', () => {
    expect(resolveRecipient('+shared.pub', opts())).toEqual({ userid: null, mailbox: 'shared^pub' });
    expect(resolveRecipient('+shared/pub', opts())).toEqual({ userid: null, mailbox: 'shared.pub' });
  });
});

describe('resolveRecipient: the last @ and the domain (behaviour §2.1, §2.2)', () => {
  it('splits at the LAST @', () => {
    expect(resolveRecipient('a@b@example.com', opts())).toEqual({ userid: 'a@b', mailbox: 'user.a@b' });
    expect(resolveRecipient('a@b@example.com', opts({ virtdomains: 'on' })))
      .toEqual({ userid: 'a@b@example.com', mailbox: 'example.com!user.a@b' });
  });

  it('virtdomains off drops every domain', () => {
    expect(resolveRecipient('fred@other.org', opts())).toEqual({ userid: 'fred', mailbox: 'user.fred' });
  });

  for (const virtdomains of ['userid', 'on'] as const) {
    describe(`virtdomains ${virtdomains}`, () => {
      const o = opts({ virtdomains, defaultdomain: 'example.com' });
      it('drops the defaultdomain, case-insensitively (deliberate difference)', () => {
        expect(resolveRecipient('fred@example.com', o)).toEqual({ userid: 'fred', mailbox: 'user.fred' });
        expect(resolveRecipient('fred@EXAMPLE.COM', o)).toEqual({ userid: 'fred', mailbox: 'user.fred' });
        expect(resolveRecipient('full@Example.Com', opts({ virtdomains, defaultdomain: 'EXAMPLE.com', downcase: false })))
          .toEqual({ userid: 'full', mailbox: 'user.full' });
      });
      it('any other domain qualifies the user', () => {
        expect(resolveRecipient('fred@other.org', o)).toEqual({ userid: 'fred@other.org', mailbox: 'other.org!user.fred' });
        expect(resolveRecipient('Fred+Sub@Other.ORG', o)).toEqual({ userid: 'fred@other.org', mailbox: 'other.org!user.fred.Sub' });
      });
      it('even an empty one', () => {
        expect(resolveRecipient('fred@', o)).toEqual({ userid: 'fred@', mailbox: '!user.fred' });
      });
      it('an unset defaultdomain matches no domain, not even an empty one (Cyrus 3.6, differential test)', () => {
        expect(resolveRecipient('fred@', opts({ virtdomains }))).toEqual({ userid: 'fred@', mailbox: '!user.fred' });
        expect(resolveRecipient('fred', opts({ virtdomains }))).toEqual({ userid: 'fred', mailbox: 'user.fred' });
      });
      it('no @: no domain', () => {
        expect(resolveRecipient('fred', o)).toEqual({ userid: 'fred', mailbox: 'user.fred' });
      });
      it('downcase off keeps the domain as written', () => {
        expect(resolveRecipient('Fred@Other.ORG', opts({ virtdomains, downcase: false })))
          .toEqual({ userid: 'Fred@Other.ORG', mailbox: 'Other.ORG!user.Fred' });
      });
    });
  }
});

describe('resolveRecipient: the detail (behaviour §2.3, §2.7, §2.8)', () => {
  it('splits at the FIRST +', () => {
    expect(resolveRecipient('fred+a+b', opts())).toEqual({ userid: 'fred', mailbox: 'user.fred.a+b' });
  });

  it('splits the detail on the "/" separator; . and ^ both name a folder with a dot', () => {
    const o = opts();
    expect(resolveRecipient('fred+a/b', o)?.mailbox).toBe('user.fred.a.b');
    expect(resolveRecipient('fred+a.b', o)?.mailbox).toBe('user.fred.a^b');
    expect(resolveRecipient('fred+a^b', o)?.mailbox).toBe('user.fred.a^b');
  });

  it('splits the detail on the "." separator', () => {
    const o = opts({ separator: '.' });
    expect(resolveRecipient('fred+a.b', o)?.mailbox).toBe('user.fred.a.b');
    expect(resolveRecipient('fred+a^b', o)?.mailbox).toBe('user.fred.a^b');
    expect(resolveRecipient('fred+a/b', o)?.mailbox).toBe('user.fred.a/b');
  });

  it('drops empty components wherever they occur', () => {
    expect(resolveRecipient('fred+x..y', opts({ separator: '.' }))?.mailbox).toBe('user.fred.x.y');
    expect(resolveRecipient('fred+.x.y.', opts({ separator: '.' }))?.mailbox).toBe('user.fred.x.y');
    expect(resolveRecipient('fred+x//y', opts())?.mailbox).toBe('user.fred.x.y');
    expect(resolveRecipient('fred+x..y', opts())?.mailbox).toBe('user.fred.x^^y'); // one component with "/"
    expect(resolveRecipient('+shared/pub/', opts())).toEqual({ userid: null, mailbox: 'shared.pub' });
    expect(resolveRecipient('+/shared//pub', opts())).toEqual({ userid: null, mailbox: 'shared.pub' });
    expect(resolveRecipient('fred+', opts())).toEqual({ userid: 'fred', mailbox: 'user.fred' });
    expect(resolveRecipient('fred+/', opts())).toEqual({ userid: 'fred', mailbox: 'user.fred' });
    expect(resolveRecipient('fred+..', opts({ separator: '.' }))).toEqual({ userid: 'fred', mailbox: 'user.fred' });
  });

  it('keeps the detail case, whatever lmtp_downcase_rcpt says', () => {
    expect(resolveRecipient('FRED+Sub', opts())).toEqual({ userid: 'fred', mailbox: 'user.fred.Sub' });
    expect(resolveRecipient('FRED+Sub', opts({ downcase: false }))).toEqual({ userid: 'FRED', mailbox: 'user.FRED.Sub' });
  });

  for (const separator of SEPS) {
    it(`encodes a UTF-8 detail to modified UTF-7 (separator ${separator})`, () => {
      const o = opts({ separator });
      expect(resolveRecipient('fred+café', o)?.mailbox).toBe('user.fred.caf&AOk-');
      expect(resolveRecipient('fred+日本語', o)?.mailbox).toBe('user.fred.&ZeVnLIqe-');
      expect(resolveRecipient('fred+a&b', o)?.mailbox).toBe('user.fred.a&-b');
      expect(resolveRecipient(`fred+café${separator}Übung`, o)?.mailbox).toBe('user.fred.caf&AOk-.&ANw-bung');
    });
    it(`takes an already encoded detail as it is (separator ${separator})`, () => {
      const o = opts({ separator });
      expect(resolveRecipient('fred+caf&AOk-', o)?.mailbox).toBe('user.fred.caf&AOk-');
      expect(resolveRecipient('fred+a&-b', o)?.mailbox).toBe('user.fred.a&-b');
      expect(resolveRecipient(`fred+caf&AOk-${separator}x`, o)?.mailbox).toBe('user.fred.caf&AOk-.x');
    });
  }

  it('encodes a detail that mixes an encoded run with raw UTF-8 as text', () => {
    expect(resolveRecipient('fred+caf&AOk-é', opts())?.mailbox).toBe('user.fred.caf&-AOk-&AOk-');
  });
});

describe('resolveRecipient: -p (behaviour §2.4)', () => {
  const o = opts({ skipPlus: true });
  it('drops the detail', () => {
    expect(resolveRecipient('fred+anything', o)).toEqual({ userid: 'fred', mailbox: 'user.fred' });
    expect(resolveRecipient('fred+a!b', o)).toEqual({ userid: 'fred', mailbox: 'user.fred' });
    expect(resolveRecipient('fred+anything@other.org', opts({ skipPlus: true, virtdomains: 'on' })))
      .toEqual({ userid: 'fred@other.org', mailbox: 'other.org!user.fred' });
  });
  it('leaves a shared-folder address with nothing to name', () => {
    expect(resolveRecipient('+shared.pub', opts({ skipPlus: true, separator: '.' }))).toBeNull();
  });
});

describe('resolveRecipient: lmtp_downcase_rcpt (behaviour §2.5)', () => {
  it('lowercases ASCII letters only', () => {
    expect(resolveRecipient('FRÉD', opts())).toEqual({ userid: 'frÉd', mailbox: 'user.frÉd' });
    expect(resolveRecipient('FRÉD@ÉXAMPLE.COM', opts({ virtdomains: 'on' })))
      .toEqual({ userid: 'frÉd@Éxample.com', mailbox: 'Éxample.com!user.frÉd' });
  });
  it('can be turned off', () => {
    expect(resolveRecipient('FRÉD', opts({ downcase: false }))).toEqual({ userid: 'FRÉD', mailbox: 'user.FRÉD' });
  });
});

describe('resolveRecipient: postuser and shared folders (behaviour §2.6, §2.7)', () => {
  it('default postuser "": an empty user part names a shared folder', () => {
    expect(resolveRecipient('+shared.pub', opts({ separator: '.' }))).toEqual({ userid: null, mailbox: 'shared.pub' });
    expect(resolveRecipient('+shared', opts())).toEqual({ userid: null, mailbox: 'shared' });
    expect(resolveRecipient('+', opts())).toBeNull();
    expect(resolveRecipient('@example.com', opts())).toBeNull();
  });

  it('shared folders are in the default domain only', () => {
    const o = opts({ virtdomains: 'on', defaultdomain: 'example.com', separator: '.' });
    expect(resolveRecipient('+shared.pub@example.com', o)).toEqual({ userid: null, mailbox: 'shared.pub' });
    expect(resolveRecipient('+shared.pub@other.org', o)).toEqual({ userid: 'shared@other.org', mailbox: 'other.org!user.shared.pub' });
    expect(resolveRecipient('@other.org', o)).toBeNull();
  });

  for (const separator of SEPS) {
    it(`postuser bb (separator ${separator})`, () => {
      const o = opts({ postuser: 'bb', separator });
      expect(resolveRecipient(`bb+shared${separator}blah`, o)).toEqual({ userid: null, mailbox: 'shared.blah' });
      expect(resolveRecipient(`BB+shared${separator}blah`, o)).toEqual({ userid: null, mailbox: 'shared.blah' });
      expect(resolveRecipient('bb', o)).toBeNull();
      expect(resolveRecipient('fred', o)).toEqual({ userid: 'fred', mailbox: 'user.fred' });
    });
  }

  it('postuser bb: +shared.pub (empty user part, not the postuser) is user shared\'s folder pub', () => {
    expect(resolveRecipient('+shared.pub', opts({ postuser: 'bb', separator: '.' })))
      .toEqual({ userid: 'shared', mailbox: 'user.shared.pub' });
    // With "/" the detail is one component: user "shared.pub"'s INBOX.
    expect(resolveRecipient('+shared.pub', opts({ postuser: 'bb' })))
      .toEqual({ userid: 'shared.pub', mailbox: 'user.shared^pub' });
    expect(resolveRecipient('', opts({ postuser: 'bb' }))).toBeNull();
    expect(resolveRecipient('+', opts({ postuser: 'bb' }))).toBeNull();
  });

  it('downcase off: the postuser must match exactly', () => {
    expect(resolveRecipient('BB+x', opts({ postuser: 'bb', downcase: false }))).toEqual({ userid: 'BB', mailbox: 'user.BB.x' });
  });

  it('a postuser with a domain matches only that userid', () => {
    const o = opts({ postuser: 'bb@other.org', virtdomains: 'on', separator: '.' });
    expect(resolveRecipient('bb+shared.pub@other.org', o)).toEqual({ userid: null, mailbox: 'shared.pub' });
    expect(resolveRecipient('bb+shared.pub', o)).toEqual({ userid: 'bb', mailbox: 'user.bb.shared.pub' });
  });
});

describe('resolveRecipient: the user part is never split (behaviour §2.8)', () => {
  for (const separator of SEPS) {
    it(`a dot is stored as ^ (separator ${separator})`, () => {
      expect(resolveRecipient('fred.smith', opts({ separator }))).toEqual({ userid: 'fred.smith', mailbox: 'user.fred^smith' });
      expect(resolveRecipient('fred.smith+sub', opts({ separator })))
        .toEqual({ userid: 'fred.smith', mailbox: 'user.fred^smith.sub' });
    });
  }
  it('a "/" stays in the user part', () => {
    expect(resolveRecipient('fred/smith', opts())).toEqual({ userid: 'fred/smith', mailbox: 'user.fred/smith' });
  });
  it('a ^ in the user part is the . it stands for in the userid', () => {
    expect(resolveRecipient('fred^smith', opts())).toEqual({ userid: 'fred.smith', mailbox: 'user.fred^smith' });
  });
  it('a ! never marks a domain: such a key names no mailbox', () => {
    expect(resolveRecipient('fred!x', opts())).toBeNull();
    expect(resolveRecipient('example.com!fred', opts({ virtdomains: 'on' }))).toBeNull();
    expect(resolveRecipient('fred+a!b', opts())).toBeNull();
    expect(resolveRecipient('+a!b', opts())).toBeNull();
    expect(resolveRecipient('fred@a!b', opts({ virtdomains: 'on' }))).toBeNull();
    expect(resolveRecipient('fred@a!b', opts())).toEqual({ userid: 'fred', mailbox: 'user.fred' }); // domain dropped
  });
});

describe('resolveRecipient: control characters (behaviour §2.9)', () => {
  it.each([
    'fred\x00', '\x00fred', 'fred\x1f+x', 'fred\x7f', 'fred+a\tb', 'fred@ex\x01ample.com', '+shared\x00.pub', '\r\n',
  ])('%j names no mailbox', (key) => {
    expect(resolveRecipient(key, opts())).toBeNull();
  });
  it('space and ~ are not control characters', () => {
    expect(resolveRecipient('fred+a b~', opts())?.mailbox).toBe('user.fred.a b~');
  });
  it('a lone surrogate (no UTF-8 key holds one) names no mailbox', () => {
    expect(resolveRecipient('fred+\ud800', opts())).toBeNull();
  });
});
