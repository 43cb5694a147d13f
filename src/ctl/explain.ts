// smmapctl explain: every step the checks take for a key (the same check() the daemon runs,
// with its trace on), then the exact line `smmapctl query` prints for it. With --size, the
// quota is judged as the policy service (smmapd --policy) does for a message of that size,
// and the last line is the policy reply instead.
import { check } from '../core/policy';
import { actionKind, policyAction } from '../core/policy-actions';
import { replyPayload } from '../core/reply';
import { policyOptions } from '../policy-options';
import { openStore } from '../store/registry';
import { parseCount, stringOpt, type CommandSpec } from './spec';

export const explainCommand: CommandSpec = {
  words: ['explain'],
  args: [{ name: 'KEY', variadic: true }],
  options: [
    { long: 'skip-plus', short: 'p', description: 'drop the +detail, as smmapd -p does' },
    { long: 'size', value: 'BYTES', description: 'judge the quota as smmapd --policy does for a message of this size; end with its action' },
  ],
  summary: 'show each check the daemon makes for each key, ending with the reply smmapctl query prints',
  details:
    'For each key: the key, then one indented line per step (split of the address, internal\n' +
    'mailbox name, deny entry and service, existence, anonymous rights on a shared folder,\n' +
    'quota root with limits, usage and verdict), then the reply line exactly as `smmapctl\n' +
    'query` prints it (with --size: the `action=` line smmapd --policy sends).',
  batch: false,
  async run(ctx, keys, opts) {
    const sizeText = stringOpt(opts, 'size');
    const size = sizeText === undefined ? null : parseCount('--size', sizeText);
    const store = openStore(ctx.cfg, () => undefined);
    try {
      const o = policyOptions(ctx.cfg, opts['skipPlus'] === true);
      for (const key of keys) {
        ctx.out(`key ${JSON.stringify(key)}`);
        const trace = (step: string, text: string): void => ctx.out(`  ${step}: ${text}`);
        trace('options', `service "${o.serviceName}", virtdomains ${o.resolve.virtdomains}, separator "${o.resolve.separator}"` +
          `${o.resolve.postuser !== '' ? `, postuser "${o.resolve.postuser}"` : ''}${o.overQuotaPerm ? ', lmtp_over_quota_perm_failure' : ''}`);
        const sized = size === null ? null : { size, gracePercent: ctx.cfg.policy.gracePercent };
        const v = await check(key, store, o, sized, trace);
        if (v.status === 'TEMP' && v.outcome === 'failed') trace('store', `failed: ${v.text}`);
        if (size === null) ctx.out(replyPayload(v));
        else {
          trace('socketmap reply', replyPayload(v));
          const kind = actionKind(v);
          trace('policy', `${kind} (smmapd_policy_${kind}${kind === 'toolarge' && ctx.cfg.policy.toolarge === '' ? ', empty: as overquota' : ''})`);
          ctx.out(`action=${policyAction(kind, v.text, ctx.cfg.policy)}`);
        }
      }
    } finally {
      await store.close();
    }
  },
};
