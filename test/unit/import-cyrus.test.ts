// Parsers of Cyrus's dumps. The samples are what Cyrus 3.6 printed on this machine.
import { describe, expect, it } from 'vitest';
import { ImportError, parseDenyList, parseMboxlist, parseQuotaReport } from '../../src/store/cyrus-dump';
import type { ServerNaming } from '../../src/store/imap-names';

const netnews: ServerNaming = { separator: '.', domains: false, defaultdomain: '' };
const unixDom: ServerNaming = { separator: '/', domains: true, defaultdomain: 'example.org' };

describe('ctl_mboxlist -d', () => {
  const dump = `{
"example.com!user.bob": {"name": "example.com!user.bob", "mtime": "1795258719", "uidvalidity": "1795258720", "createdmodseq": "1", "foldermodseq": "4", "mbtype": "e", "partition": "default", "acl": {"bob@example.com": "lrswipkxtecdan", "cyrus": "lrswipkxtecda"}, "uniqueid": "qpwh1474tbt7d1st9vkskj0b", "name_history": []},
"shared": {"name": "shared", "mtime": "1795258605", "uidvalidity": "1795258606", "createdmodseq": "1", "foldermodseq": "1", "mbtype": "e", "partition": "default", "acl": {"anyone": "lrs"}, "uniqueid": "8ufmram6u31lpzq4g6m2r5hy", "name_history": []},
"user.gone": {"name": "user.gone", "mbtype": "ed", "acl": {}},
"user.mid": {"name": "user.mid", "mbtype": "i"},
"user.fred^smith": {"name": "user.fred^smith", "mbtype": "e", "partition": "default", "acl": {"fred.smith": "lrswipkxtecdan"}}
}
`;

  it('mailboxes with their ACLs as Cyrus ACL text; deleted and intermediate entries are not mailboxes', () => {
    expect(parseMboxlist(dump)).toEqual([
      { name: 'example.com!user.bob', acl: 'bob@example.com\tlrswipkxtecdan\tcyrus\tlrswipkxtecda\t' },
      { name: 'shared', acl: 'anyone\tlrs\t' },
      { name: 'user.fred^smith', acl: 'fred.smith\tlrswipkxtecdan\t' },
    ]);
  });

  it('refuses what is not the 3.x JSON dump', () => {
    expect(() => parseMboxlist('user.fred\tdefault\tfred\tlrswipkxtecda\t\n')).toThrow(ImportError);
    expect(() => parseMboxlist('[]')).toThrow(ImportError);
    expect(() => parseMboxlist('{"user.x": {"acl": {"a": 1}}}')).toThrow(ImportError);
  });
});

describe('quota report', () => {
  const text = `   Quota   % Used     Used             Resource Root
       5        0        0              STORAGE (null)
                         0              MESSAGE (null)
     100        8        8              STORAGE user.q1
       5       60        3              MESSAGE user.q1
                         0 X-ANNOTATION-STORAGE user.q1
                         1        X-NUM-FOLDERS user.q1
                         0              STORAGE user.q2
       7        0        0              MESSAGE user.q2
       0                 0              STORAGE user.zero
 2000000000        0        0              STORAGE user.big folder
`;

  it('text: KiB usage × 1024, limits per resource, a 0 limit kept, a (null) domain root skipped', () => {
    const r = parseQuotaReport(text, netnews);
    expect(r.quotas).toEqual([
      { root: 'user.q1', storageLimitKiB: 100, messageLimit: 5, storageUsed: 8 * 1024, messageUsed: 3 },
      { root: 'user.q2', storageLimitKiB: null, messageLimit: 7, storageUsed: 0, messageUsed: 0 },
      { root: 'user.zero', storageLimitKiB: 0, messageLimit: null, storageUsed: 0, messageUsed: 0 },
      { root: 'user.big folder', storageLimitKiB: 2000000000, messageLimit: null, storageUsed: 0, messageUsed: 0 },
    ]);
    expect(r.skipped).toHaveLength(1);
  });

  it('JSON (quota -J): exact bytes, limits in bytes become KiB', () => {
    const json = JSON.stringify({
      'user/fred.smith': { STORAGE: { used: 9045, limit: 102400 }, MESSAGE: { used: 3, limit: 5 }, 'X-NUM-FOLDERS': { used: 1 } },
      'user/bob@example.com': { STORAGE: { used: 0 }, MESSAGE: { used: 0, limit: 7 } },
    });
    expect(parseQuotaReport(json, unixDom).quotas).toEqual([
      { root: 'user.fred^smith', storageLimitKiB: 100, messageLimit: 5, storageUsed: 9045, messageUsed: 3 },
      { root: 'example.com!user.bob', storageLimitKiB: null, messageLimit: 7, storageUsed: 0, messageUsed: 0 },
    ]);
  });

  it('refuses lines it cannot read', () => {
    expect(() => parseQuotaReport('   Quota   % Used     Used             Resource Root\nhello world\n', netnews)).toThrow(ImportError);
    expect(() => parseQuotaReport('{"user.x": {"STORAGE": {"used": "many"}}}', netnews)).toThrow(ImportError);
  });
});

describe('cyr_deny -l', () => {
  it('entries; the default message comes back empty', () => {
    const text = `Username                       Service(s)           Message
bob                            imap,pop3            go away
fred                           *                    Access to this service has been blocked
a-very-long-user-name-of-more-than-30@example.com !smmapd,* it is  spaced
`;
    expect(parseDenyList(text)).toEqual([
      { userid: 'bob', services: 'imap,pop3', message: 'go away' },
      { userid: 'fred', services: '*', message: '' },
      { userid: 'a-very-long-user-name-of-more-than-30@example.com', services: '!smmapd,*', message: 'it is  spaced' },
    ]);
  });

  it('an empty list is fine', () => {
    expect(parseDenyList('Username                       Service(s)           Message\n')).toEqual([]);
    expect(parseDenyList('')).toEqual([]);
  });
});
