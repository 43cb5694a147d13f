// smmapd_allow_from's matcher (src/core/allow.ts): addresses and CIDR ranges, IPv4 and IPv6,
// IPv4 clients on a dual-stack socket (::ffff:a.b.c.d) matched as IPv4.
import { describe, expect, it } from 'vitest';
import { addressBytes, AllowList, AllowListError } from '../../src/core/allow';
import { configFromText, ConfigError, restartOnlyChanges } from '../../src/config';

describe('AllowList', () => {
  it('unset or empty: anyone', () => {
    const open = AllowList.parse('');
    expect(open.open).toBe(true);
    for (const a of ['127.0.0.1', '::1', '203.0.113.9', 'garbage']) expect(open.allows(a)).toBe(true);
  });

  it('single addresses and IPv4 ranges, also as IPv4-mapped IPv6', () => {
    const l = AllowList.parse('127.0.0.1 192.0.2.0/24, 10.0.0.0/8');
    expect(l.allows('127.0.0.1')).toBe(true);
    expect(l.allows('::ffff:127.0.0.1')).toBe(true);
    expect(l.allows('::FFFF:7f00:1')).toBe(true);
    expect(l.allows('127.0.0.2')).toBe(false);
    expect(l.allows('192.0.2.255')).toBe(true);
    expect(l.allows('::ffff:192.0.2.7')).toBe(true);
    expect(l.allows('192.0.3.0')).toBe(false);
    expect(l.allows('10.255.255.255')).toBe(true);
    expect(l.allows('11.0.0.0')).toBe(false);
    expect(l.allows('::1')).toBe(false);
    // an IPv4 range never matches a native IPv6 address with the same low bits
    expect(l.allows('::7f00:1')).toBe(false);
    expect(l.allows('not an address')).toBe(false);
  });

  it('IPv6 addresses and ranges, zones ignored, odd prefix lengths', () => {
    const l = AllowList.parse('::1 2001:db8::/32 fe80::/10 2001:db8:ffff:ff80::/57');
    expect(l.allows('::1')).toBe(true);
    expect(l.allows('0:0:0:0:0:0:0:1')).toBe(true);
    expect(l.allows('::2')).toBe(false);
    expect(l.allows('2001:db8:1234::5')).toBe(true);
    expect(l.allows('2001:db9::1')).toBe(false);
    expect(l.allows('fe80::1%eth0')).toBe(true);
    expect(l.allows('febf:ffff::1')).toBe(true);
    expect(l.allows('fec0::1')).toBe(false);
    expect(l.allows('127.0.0.1')).toBe(false);
    const odd = AllowList.parse('192.0.2.128/25 0.0.0.0/0');
    expect(odd.allows('198.51.100.1')).toBe(true); // 0/0: every IPv4 client
    expect(odd.allows('2001:db8::1')).toBe(false); // but not IPv6 ones
    expect(AllowList.parse('::/0').allows('2001:db8::1')).toBe(true);
  });

  it('parses addresses as the kernel writes them', () => {
    expect(addressBytes('1.2.3.4')).toEqual(addressBytes('::ffff:1.2.3.4'));
    expect(addressBytes('2001:db8::1')).toEqual(addressBytes('2001:0db8:0:0:0:0:0:0001'));
    for (const bad of ['1.2.3', '1.2.3.256', '1:2:3:4:5:6:7:8:9', '1::2::3', '::g', '1:2:3:4:5:6:7', '']) expect(addressBytes(bad), bad).toBeNull();
  });

  it('refuses what is not an address or range', () => {
    for (const bad of ['localhost', '10.0.0.0/33', '::/129', '10.0.0.0/', '1.2.3.4/x', '300.1.1.1']) {
      expect(() => AllowList.parse(bad), bad).toThrow(AllowListError);
    }
  });

  it('as smmapd_allow_from: a bad entry stops the start, naming the option and line', () => {
    expect(configFromText('smmapd_allow_from: 127.0.0.1 ::1').allowFrom.allows('::1')).toBe(true);
    expect(() => configFromText('configdirectory: /x\nsmmapd_allow_from: 127.0.0.1 mx.example', 'f.conf')).toThrow(/f\.conf:2: smmapd_allow_from: .*"mx\.example"/);
    expect(() => configFromText('smmapd_allow_from: 1.2.3.4/40')).toThrow(ConfigError);
  });
});

describe('smmapd_listen, smmapd_policy_listen, smmapd_workers', () => {
  it('take several addresses separated by spaces, in --listen syntax', () => {
    const c = configFromText('smmapd_listen: inet:127.0.0.1:12345  unix:/run/smmapd/s.sock\nsmmapd_policy_listen: inet:[::1]:10033');
    expect(c.listen).toEqual(['inet:127.0.0.1:12345', 'unix:/run/smmapd/s.sock']);
    expect(c.policyListen).toEqual(['inet:[::1]:10033']);
    expect(configFromText('').listen).toEqual([]);
    expect(() => configFromText('smmapd_listen: inet:127.0.0.1:12345 127.0.0.1:25', 'f.conf')).toThrow(/f\.conf:1: smmapd_listen: .*"127\.0\.0\.1:25"/);
  });

  it('smmapd_workers: a word that is not auto names auto', () => {
    expect(() => configFromText('smmapd_workers: two')).toThrow(/want a whole number from 1 or auto, not "two"/);
    expect(configFromText('smmapd_workers: AUTO').workers).toBeGreaterThan(0);
  });
});

describe('restartOnlyChanges', () => {
  it('names every changed option a reload cannot apply, and only those', () => {
    const a = configFromText('smmapd_listen: inet:127.0.0.1:1\nsmmapd_metrics_listen: inet:127.0.0.1:9\nsmmapd_workers: 2\nsmmapd_timeout: 5');
    const b = configFromText('smmapd_listen: inet:127.0.0.1:1 inet:127.0.0.1:2\nsmmapd_metrics_listen: inet:127.0.0.1:10\nsmmapd_workers: 2\nsmmapd_timeout: 6\nsmmapd_user: nobody\nsmmapd_policy_listen: inet:127.0.0.1:3');
    expect(restartOnlyChanges(a, b)).toEqual(['smmapd_listen', 'smmapd_policy_listen', 'smmapd_metrics_listen', 'smmapd_user']);
    expect(restartOnlyChanges(a, a)).toEqual([]);
  });
});
