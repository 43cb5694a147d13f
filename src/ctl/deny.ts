// smmapctl deny add|remove|list: the user deny list (Cyrus 3.12's cyr_deny).
import { resolveRecipient } from '../core/recipient';
import { MSG_DENIED_DEFAULT } from '../core/reply';
import { checkOptions } from '../check-options';
import type { CtlContext } from './context';
import { UsageError } from './context';
import { stringOpt, type CommandSpec } from './spec';

/**
 * The userid as the daemon will look it up (behaviour §2): domain dropped or kept as virtdomains
 * says, lowercased with lmtp_downcase_rcpt. An entry stored any other way would never match.
 */
function denyUserid(ctx: CtlContext, user: string): string {
  if (user === '') throw new UsageError('empty userid');
  if (user.includes('+')) throw new UsageError(`${user}: a userid has no +detail`);
  const r = resolveRecipient(user, checkOptions(ctx.cfg, true).resolve);
  if (r === null || r.userid === null) throw new UsageError(`${user}: not a userid`);
  return r.userid;
}

export const denyCommands: readonly CommandSpec[] = [
  {
    words: ['deny', 'add'],
    args: [{ name: 'USER' }],
    options: [
      { long: 'services', value: 'WILDMAT', description: 'comma-separated service patterns (default *)' },
      { long: 'message', value: 'TEXT', description: `reply text (default "${MSG_DENIED_DEFAULT}")` },
    ],
    summary: 'deny a user (replaces an existing entry)',
    details:
      'The entry applies when a pattern matches the daemon\'s service name (smmapd_service_name,\n' +
      'default smmapd); the first matching pattern decides and a leading ! allows.',
    batch: true,
    run(ctx, [user], opts) {
      ctx.store(true).setDeny(denyUserid(ctx, user!), stringOpt(opts, 'services') ?? '*', stringOpt(opts, 'message') ?? '');
    },
  },
  {
    words: ['deny', 'remove'],
    args: [{ name: 'USER' }],
    summary: 'allow a user again (one not on the list is fine)',
    batch: true,
    run(ctx, [user]) {
      if (user === '') throw new UsageError('empty userid');
      let userid: string | null = null;
      try {
        userid = denyUserid(ctx, user!);
      } catch (e) {
        if (!(e instanceof UsageError)) throw e;
      }
      const store = ctx.store(true);
      // Also the name exactly as typed, in case an entry was stored that way by other means.
      store.transaction(() => {
        store.removeDeny(user!);
        if (userid !== null) store.removeDeny(userid);
      });
    },
  },
  {
    words: ['deny', 'list'],
    args: [],
    summary: 'list the deny list (like cyr_deny -l)',
    batch: true,
    run(ctx) {
      const row = (u: string, s: string, m: string): string => `${u.padEnd(30)} ${s.padEnd(20)} ${m}`;
      ctx.out(row('Username', 'Service(s)', 'Message'));
      for (const e of ctx.store(false).listDeny()) ctx.out(row(e.userid, e.services, e.message || MSG_DENIED_DEFAULT));
    },
  },
];
