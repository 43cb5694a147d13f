// Socketmap replies (behaviour §1, §3): a status word, one space, a text.

export type Status = 'OK' | 'NOTFOUND' | 'TEMP' | 'TIMEOUT' | 'PERM';

/** The audit outcome Cyrus logs for each answer (auditlog_client in imap/smmapd.c). */
export type Outcome = 'ok' | 'nonexistent' | 'overquota' | 'denied' | 'failed';

export interface Reply {
  readonly status: Status;
  readonly text: string;
  readonly outcome: Outcome;
}

/** Cyrus's error_message() texts, which are what its smmapd sends. */
export const MSG_NONEXISTENT = 'Mailbox does not exist';
export const MSG_PERMISSION = 'Permission denied';
export const MSG_OVERQUOTA = 'Over quota';
export const MSG_DENIED_DEFAULT = 'Access to this service has been blocked';
export const MSG_BAD_PROTOCOL = 'Bad protocol';

/** Our own: past smmapd_max_connections, before the connection is closed. */
export const TOO_MANY_CONNECTIONS: Reply = { status: 'TEMP', text: 'Too many connections, try again later', outcome: 'failed' };

export const NONEXISTENT: Reply = { status: 'NOTFOUND', text: MSG_NONEXISTENT, outcome: 'nonexistent' };

export function badProtocol(reason: string): Reply {
  return { status: 'PERM', text: `${MSG_BAD_PROTOCOL} (${reason})`, outcome: 'failed' };
}

/** A store failure: never OK, never PERM (Sendmail would bounce), always TEMP (behaviour §3, last paragraph). */
export function storeFailure(reason: string): Reply {
  return { status: 'TEMP', text: reason, outcome: 'failed' };
}

/** The payload of the reply netstring: `<STATUS> <text>`, one space even when text is empty. */
export function replyPayload(r: Reply): string {
  return `${r.status} ${r.text}`;
}
