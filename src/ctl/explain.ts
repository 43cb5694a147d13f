// smmapctl explain: every step the checks take for a key (the same check() the daemon runs,
// with its trace on), then the exact line `smmapctl query` prints for it. With --size, the
// quota is judged as the policy service (smmapd --policy) does for a message of that size,
// and the last line is the policy reply instead.
import { check } from '../core/checks';
import { actionKind, policyAction } from '../core/policy-actions';
import { replyPayload } from '../core/reply';
import { checkOptions } from '../check-options';
import { openStore } from '../store/registry';
import { lookupReply, openMap } from '../table/maps';
import { UsageError, type CtlContext } from './context';
import { directoryLines, directoryReasons } from './maps';
import { KEYS_ARG, parseCount, SKIP_PLUS_OPTION, stringOpt, type CommandSpec } from './spec';

/** --map NAME: the table, what each lookup sends, and the reply `smmapctl query --map` prints. */
async function explainMap(ctx: CtlContext, name: string, keys: readonly string[]): Promise<void> {
  const spec = ctx.cfg.maps.find((m) => m.name === name.toLowerCase());
  if (spec === undefined) throw new UsageError(`no map ${name} in ${ctx.cfg.path || 'the configuration'} (smmapd_map_${name.toLowerCase()} is not set)`);
  const said: string[] = [];
  const table = openMap(spec, ctx.cfg, directoryLines(said));
  try {
    for (const key of keys) {
      said.length = 0;
      ctx.out(`key ${JSON.stringify(key)}`);
      ctx.out(`  map: ${spec.name} (smmapd_map_${spec.name}, ${spec.where}): ${spec.type}:${spec.file}`);
      if (table.describe === undefined) ctx.out(`  lookup: the ${spec.type} driver cannot show its query`);
      else {
        const q = table.describe(key);
        ctx.out(`  lookup: ${q === null ? 'skipped: the domain list or the query template rules this key out (NOTFOUND, nothing is sent)' : q}`);
      }
      const r = await lookupReply(table, Buffer.from(key, 'utf8'), ctx.cfg.mapTimeoutMs, `map ${spec.name}`);
      // a TEMP reply is short by design; the directory's own reason is what the admin needs
      if (r.status === 'TEMP') for (const line of directoryReasons(r.text, said)) ctx.out(`  directory: ${line}`);
      ctx.out(`${r.status} ${r.text}`);
    }
  } finally {
    await table.close();
  }
}

export const explainCommand: CommandSpec = {
  words: ['explain'],
  args: [KEYS_ARG],
  options: [
    SKIP_PLUS_OPTION,
    { long: 'size', value: 'BYTES', description: 'judge the quota as smmapd --policy does for a message of this size; end with its action' },
    { long: 'map', value: 'NAME', description: 'explain a lookup in the directory map NAME (smmapd_map_NAME) instead' },
  ],
  summary: 'show each check the daemon makes for each key, ending with the reply smmapctl query prints',
  details:
    'For each key: the key, then one indented line per step (split of the address, internal\n' +
    'mailbox name, deny entry and service, existence, anonymous rights on a shared folder,\n' +
    'quota root with limits, usage and verdict), then the reply line exactly as `smmapctl\n' +
    'query` prints it (with --size: the `action=` line smmapd --policy sends). With --map: the\n' +
    'map, its type and file, the query or LDAP filter the lookup sends, and the reply line\n' +
    '`smmapctl query --map` prints.',
  batch: false,
  async run(ctx, keys, opts) {
    const map = stringOpt(opts, 'map');
    if (map !== undefined) return explainMap(ctx, map, keys);
    const sizeText = stringOpt(opts, 'size');
    const size = sizeText === undefined ? null : parseCount('--size', sizeText);
    const store = openStore(ctx.cfg, () => undefined);
    try {
      const o = checkOptions(ctx.cfg, opts['skipPlus'] === true);
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
