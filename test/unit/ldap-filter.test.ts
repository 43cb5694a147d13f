import { describe, expect, it } from 'vitest';
import { parseFilter, rewrite } from '../../src/table/ldap-filter';

describe('LDAP filters as libldap reads them', () => {
  it('drops the white space ldap_pvt_put_filter() skips, keeps what is in a value', () => {
    expect(rewrite('(|(mail=a)\n    (uid=b))')).toBe('(|(mail=a)(uid=b))');
    expect(rewrite('(| (mail=a) (uid=b) )')).toBe('(|(mail=a)(uid=b))');
    expect(rewrite('(&\t(mail=a)\t(!  (uid=b)))')).toBe('(&(mail=a)(!(uid=b)))');
    expect(rewrite('( mail=a b )')).toBe('(mail=a b )');
    expect(rewrite('  mail=a')).toBe('(mail=a)');
    expect(rewrite('(mail=a\\29)')).toBe('(mail=a\\29)');
    expect(rewrite('(mail=a\\))')).toBe('(mail=a\\))');
  });
  it('refuses what libldap refuses', () => {
    for (const f of ['(!(a=b) )', '(a=b) ', '(a=b)(c=d)', '((a=b))', '(a=b', '(!(a=b)(c=d))', '', ' ']) expect(rewrite(f), f).toBeNull();
    expect(() => parseFilter('(!(a=b) )')).toThrow('libldap would refuse it');
    expect(parseFilter('(| (mail=a) (uid=b))').toString()).toBe(parseFilter('(|(mail=a)(uid=b))').toString());
  });
});
