// `smmapd --policy`: from one policy delegation request (the attributes that matter) to the
// `action=...` reply, through the same checks as the socketmap path (core/checks.ts check),
// with the quota judged for this message's size. No answer cache: the size differs per
// request, and SQLite answers in microseconds.
import { check, type CheckOptions, type CheckResult } from '../core/checks';
import { isPromise } from '../core/contract';
import { actionKind, policyAction, type ActionKind, type PolicyActions } from '../core/policy-actions';
import { decodeKey } from '../core/recipient';
import type { Outcome, Status } from '../core/reply';
import type { MailboxStore, Maybe } from '../core/contract';

export interface PolicyRequest {
  /** `request=`: Postfix sends smtpd_access_policy. */
  readonly request: string;
  /** `protocol_state=`: RCPT, END-OF-DATA, ... */
  readonly state: string;
  /** `recipient=` bytes; empty when Postfix has none to give (END-OF-DATA with several). */
  readonly recipient: Buffer | null;
  /**
   * `size=`: SIZE= at RCPT (0 without), the real size at END-OF-DATA; Infinity when too large
   * to hold; null when it is not a byte count (then no opinion: DUNNO).
   */
  readonly size: number | null;
  /** `size=` as sent (the log and the audit line show it). */
  readonly sizeText: string;
  /** Postfix's SMTP client as `client_address[:client_port]` ('' when Postfix sent none): who audit lines name. */
  readonly client: string;
}

export interface PolicyResponse {
  /** `action=...\n\n`, ready to write. */
  readonly wire: string;
  readonly kind: ActionKind | 'norecipient' | 'badsize';
  /** The checks' status and outcome ('' / 'ok' when there was no recipient to check). */
  readonly status: Status | '';
  readonly outcome: Outcome;
  readonly key: string;
}

/** Nothing to check (no single recipient): no opinion, so Postfix's other restrictions decide. */
const NO_RECIPIENT: PolicyResponse = { wire: 'action=DUNNO\n\n', kind: 'norecipient', status: '', outcome: 'ok', key: '' };

/**
 * A size that is not a byte count (Postfix always sends one): the quota cannot be judged, and
 * refusing on a number we cannot read would be worse than no opinion. The session logs it.
 */
const BAD_SIZE: PolicyResponse = { wire: 'action=DUNNO\n\n', kind: 'badsize', status: '', outcome: 'failed', key: '' };

export class PolicyAnswers {
  constructor(
    private readonly store: MailboxStore,
    private readonly checks: CheckOptions,
    private readonly actions: PolicyActions,
  ) {}

  answer(req: PolicyRequest): Maybe<PolicyResponse> {
    if (req.recipient === null || req.recipient.length === 0) return NO_RECIPIENT;
    const key = decodeKey(req.recipient);
    const text = key ?? req.recipient.toString('latin1');
    if (req.size === null) return { ...BAD_SIZE, key: text };
    const v = check(key, this.store, this.checks, { size: req.size, gracePercent: this.actions.gracePercent });
    return isPromise(v) ? v.then((r) => this.reply(text, r)) : this.reply(text, v);
  }

  private reply(key: string, v: CheckResult): PolicyResponse {
    const kind = actionKind(v);
    return { wire: `action=${policyAction(kind, v.text, this.actions)}\n\n`, kind, status: v.status, outcome: v.outcome, key };
  }
}
