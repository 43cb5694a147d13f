// The size-aware quota verdict (policy service), the policy actions, and check()'s trace:
// one implementation of the rules, so with size 0 and with a trace on, the answers are
// verify's own.
import { describe, expect, it } from 'vitest';
import { check, verify, type CheckOptions } from '../../src/core/checks';
import { actionKind, defaultActions, policyAction } from '../../src/core/policy-actions';
import { parsePolicySize, quotaVerdict } from '../../src/core/quota-verdict';
import type { QuotaState } from '../../src/core/contract';
import { memoryStore } from '../../src/store/memory';
import { SPEC_TABLE } from '../fixtures/spec-table';

function q(o: Partial<QuotaState>): QuotaState {
  return { root: 'user.x', storageLimitKiB: null, messageLimit: null, storageUsed: 0, messageUsed: 0, ...o };
}

describe('quotaVerdict (lmtp_strict_quota)', () => {
  it('storage: usage plus this message over the limit; exactly at it is room', () => {
    const small = q({ storageLimitKiB: 10, storageUsed: 8192 });
    expect(quotaVerdict(small, { size: 0, gracePercent: 0 })).toBe('room');
    expect(quotaVerdict(small, { size: 2048, gracePercent: 0 })).toBe('room');
    expect(quotaVerdict(small, { size: 2049, gracePercent: 0 })).toBe('over');
    expect(quotaVerdict(small, { size: 10241, gracePercent: 0 })).toBe('toolarge');
    expect(quotaVerdict(q({ storageLimitKiB: 1, storageUsed: 1025 }), { size: 0, gracePercent: 0 })).toBe('over');
  });
  it('messages: one more over the limit, whatever the size', () => {
    expect(quotaVerdict(q({ messageLimit: 5, messageUsed: 4 }), { size: 1e9, gracePercent: 0 })).toBe('room');
    expect(quotaVerdict(q({ messageLimit: 5, messageUsed: 5 }), { size: 1, gracePercent: 0 })).toBe('over');
  });
  it('grace: one last message may go over by that share of the limit, not a mailbox already over', () => {
    const small = q({ storageLimitKiB: 10, storageUsed: 8192 });
    expect(quotaVerdict(small, { size: 3072, gracePercent: 10 })).toBe('room');
    expect(quotaVerdict(small, { size: 3073, gracePercent: 10 })).toBe('over');
    expect(quotaVerdict(q({ storageLimitKiB: 10, storageUsed: 10241 }), { size: 0, gracePercent: 50 })).toBe('over');
  });
  it('no limits: room', () => {
    expect(quotaVerdict(q({}), { size: 1e12, gracePercent: 0 })).toBe('room');
    expect(quotaVerdict(q({}), { size: Infinity, gracePercent: 0 })).toBe('room');
  });
  it('size=: a byte count, too large to hold is Infinity (over any limit), anything else none (issue 13)', () => {
    expect(parsePolicySize('0')).toBe(0);
    expect(parsePolicySize('2049')).toBe(2049);
    expect(parsePolicySize('000012')).toBe(12);
    expect(parsePolicySize('100000000000000')).toBe(1e14); // 15 digits
    expect(parsePolicySize('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
    expect(parsePolicySize('9007199254740993')).toBe(Infinity);
    expect(parsePolicySize('1000000000000000000')).toBe(Infinity); // 16+ digits were read as 0
    expect(parsePolicySize('9'.repeat(400))).toBe(Infinity);
    for (const bad of ['', '-1', '+5', '1.5', '1e3', ' 5', '5 ', 'abc', '0x10', '１２']) expect(parsePolicySize(bad), bad).toBeNull();
    const small = q({ storageLimitKiB: 10, storageUsed: 8192 });
    expect(quotaVerdict(small, { size: parsePolicySize('1000000000000000')!, gracePercent: 50 })).toBe('toolarge');
  });
});

describe('policy actions', () => {
  const a = defaultActions(false);
  it('defaults: DUNNO, 550 5.1.1, 452 4.2.2 (552 5.2.2 with perm failure), DEFER_IF_PERMIT', () => {
    expect(policyAction('success', 'fred', a)).toBe('DUNNO');
    expect(policyAction('nouser', 'Mailbox does not exist', a)).toBe('550 5.1.1 Mailbox does not exist');
    expect(policyAction('overquota', 'Over quota', a)).toBe('452 4.2.2 Over quota');
    expect(policyAction('toolarge', 'Over quota', a)).toBe('452 4.2.2 Over quota');
    expect(policyAction('overquota', 'Over quota', defaultActions(true))).toBe('552 5.2.2 Over quota');
    expect(policyAction('failure', 'store locked', a)).toBe('DEFER_IF_PERMIT store locked');
  });
  it('the reason never breaks the reply line', () => {
    expect(policyAction('failure', 'a\nb\r\x00c', a)).toBe('DEFER_IF_PERMIT a b  c');
  });
  it('the text goes in literally: `$&`, `$``, `$\'`, `$$` are not replacement patterns (issue 13)', () => {
    expect(policyAction('nouser', 'Blocked $& here $` and $$5', a)).toBe('550 5.1.1 Blocked $& here $` and $$5');
    expect(policyAction('nouser', "$' $1 $<x>", a)).toBe("550 5.1.1 $' $1 $<x>");
    // every %s of the template, and a %s in the text is not expanded again
    expect(policyAction('nouser', 'a %s $&', { ...a, nouser: '550 %s (%s)' })).toBe('550 a %s $& (a %s $&)');
  });
  it('kinds by verdict', () => {
    expect(actionKind({ status: 'OK', text: 'x', outcome: 'ok' })).toBe('success');
    expect(actionKind({ status: 'NOTFOUND', text: 'x', outcome: 'denied' })).toBe('nouser');
    expect(actionKind({ status: 'PERM', text: 'Permission denied', outcome: 'failed' })).toBe('nouser');
    expect(actionKind({ status: 'TEMP', text: 'Over quota', outcome: 'overquota', quota: 'toolarge' })).toBe('toolarge');
    expect(actionKind({ status: 'PERM', text: 'Over quota', outcome: 'overquota' })).toBe('overquota');
    expect(actionKind({ status: 'TEMP', text: 'locked', outcome: 'failed' })).toBe('failure');
  });
});

describe('check() is verify() with a size and a trace', () => {
  const owner = (u: string): string => `${u}\tlrswipkxtecdan\t`;
  const store = memoryStore({
    mailboxes: ['user.fred', 'user.fred.sub', 'user.fred.Mixed', 'user.full', 'user.quotamsg', 'user.Upper'].map((name) => ({ name, acl: owner(name.split('.')[1]!) }))
      .concat([{ name: 'shared.pub', acl: 'anyone\tlrsp\t' }, { name: 'shared.nopost', acl: 'anyone\tlrs\t' }, { name: 'shared.hidden', acl: '' }]),
    quotas: [
      { root: 'user.full', storageLimitKiB: 1, messageLimit: null, storageUsed: 2048, messageUsed: 0 },
      { root: 'user.quotamsg', storageLimitKiB: null, messageLimit: 1, storageUsed: 0, messageUsed: 1 },
    ],
  }, []);
  const o: CheckOptions = { serviceName: 'smmapd', overQuotaPerm: false, resolve: { virtdomains: 'off', defaultdomain: '', postuser: '', downcase: true, separator: '.', skipPlus: false } };
  it.each(SPEC_TABLE)('%j: same reply with size 0 and a trace', async (key) => {
    const steps: string[] = [];
    const v = await verify(key, store, o);
    const c = await check(key, store, o, { size: 0, gracePercent: 0 }, (s, t) => steps.push(`${s}: ${t}`));
    expect(`${c.status} ${c.text}`).toBe(`${v.status} ${v.text}`);
    expect(steps.length).toBeGreaterThan(0);
  });
});
