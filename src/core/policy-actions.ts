// From the checks' verdict to a Postfix policy delegation action (SMTPD_POLICY_README), the
// way Dovecot's quota-status service maps its own (quota_status_success, _nouser,
// _overquota, _toolarge). Each action is admin-configured; `%s` in it stands for the
// reply text of the checks (`Mailbox does not exist`, the deny message, `Over quota`).
import type { CheckResult } from './checks';

export interface PolicyActions {
  /** Room for the message. Never `OK` by default: that would skip the admin's later restrictions. */
  readonly success: string;
  /** Unknown, denied, or a shared folder anonymous may not post to. */
  readonly nouser: string;
  readonly overquota: string;
  /** The message is larger than the whole storage limit; '' = as overquota. */
  readonly toolarge: string;
  /** The store could not answer. */
  readonly failure: string;
  /** smmapd_policy_grace: percent of the storage limit one last message may go over. */
  readonly gracePercent: number;
}

export type ActionKind = 'success' | 'nouser' | 'overquota' | 'toolarge' | 'failure';

export function defaultActions(overQuotaPerm: boolean): PolicyActions {
  return {
    success: 'DUNNO',
    nouser: '550 5.1.1 %s',
    overquota: overQuotaPerm ? '552 5.2.2 %s' : '452 4.2.2 %s',
    toolarge: '',
    failure: 'DEFER_IF_PERMIT %s',
    gracePercent: 0,
  };
}

export function actionKind(v: CheckResult): ActionKind {
  if (v.status === 'OK') return 'success';
  if (v.outcome === 'overquota') return v.quota === 'toolarge' ? 'toolarge' : 'overquota';
  if (v.status === 'TEMP' || v.status === 'TIMEOUT') return 'failure';
  return 'nouser';
}

/** The `action=` value: one line, whatever the reply text holds. */
export function policyAction(kind: ActionKind, text: string, a: PolicyActions): string {
  const tpl = kind === 'toolarge' && a.toolarge === '' ? a.overquota : a[kind];
  if (tpl.indexOf('%s') < 0) return tpl;
  // split/join: the text is put in literally (replaceAll would expand `$&`, `$$`, ... in it)
  return tpl.split('%s').join(text.replace(/[\x00-\x1f\x7f]/g, ' '));
}
