// One Postfix policy delegation connection (SMTPD_POLICY_README), whatever carries it: a
// request is `name=value` lines ended by an empty line, the reply one `action=...` line and
// an empty line; many requests per connection, answered in order. Lines are bounded by
// smmapd_max_request bytes and a request by MAX_ATTRIBUTES; anything else (a line without
// `=`, an over-long line, too many attributes, a request that is not smtpd_access_policy)
// is logged and the connection closed without a reply: Postfix then logs the problem and
// answers the client with its own temporary error, never with an accept.
// Order, bounds, backpressure, idle timeout and drain are Connection's (connection.ts).
import type { Readable, Writable } from 'node:stream';
import { parsePolicySize } from '../core/quota-verdict';
import { auditField } from '../log';
import { Connection, type ConnectionContext } from './connection';
import { POLICY } from './metrics';
import type { Peer } from './peer';
import type { PolicyResponse, PolicyAnswers, PolicyRequest } from './policy-answers';

/** A policy connection's context: the common one and the policy answers (any listener may speak it). */
export interface PolicyContext extends ConnectionContext {
  policy: PolicyAnswers;
}

/** Postfix 3.7 sends about 35 attributes; a request with far more is not Postfix. */
export const MAX_ATTRIBUTES = 256;

/** Replies not yet written past which we stop reading. */
const MAX_QUEUED = 64;

/** What a bug on the answer path gets: defer, never accept. */
const INTERNAL_ERROR: PolicyResponse = { wire: 'action=DEFER_IF_PERMIT internal error\n\n', kind: 'failure', status: 'TEMP', outcome: 'failed', key: '' };

export class PolicySession extends Connection<PolicyContext, PolicyRequest, PolicyRequest, PolicyResponse> {
  private carry: Buffer | null = null;
  // the request being read
  private attrs = 0;
  private request = '';
  private state = '';
  private recipient: Buffer | null = null;
  private size: number | null = 0;
  /** `size=` as sent, for the log and the audit line. */
  private sizeText = '0';
  private clientAddress = '';
  private clientPort = '';

  constructor(input: Readable, output: Writable, peer: Peer, ctx: PolicyContext) {
    super(input, output, peer, ctx, MAX_QUEUED, INTERNAL_ERROR);
  }

  protected decode(chunk: Buffer): void {
    const data = this.carry === null ? chunk : Buffer.concat([this.carry, chunk]);
    this.carry = null;
    const max = this.ctx.maxRequest;
    let start = 0;
    while (this.reading) {
      const nl = data.indexOf(10, start);
      if (nl < 0) {
        if (data.length - start > max) return this.malformed(`line longer than ${max} bytes`);
        if (start < data.length) this.carry = Buffer.from(data.subarray(start));
        break;
      }
      let end = nl;
      if (end > start && data[end - 1] === 13) end--; // tolerate CRLF from hand-typed tests
      if (end - start > max) return this.malformed(`line longer than ${max} bytes`);
      const line = data.subarray(start, end);
      start = nl + 1;
      if (line.length === 0) this.endRequest();
      else this.attribute(line);
    }
  }

  private attribute(line: Buffer): void {
    const eq = line.indexOf(0x3d);
    if (eq <= 0) return this.malformed('a line that is not name=value');
    if (++this.attrs > MAX_ATTRIBUTES) return this.malformed(`more than ${MAX_ATTRIBUTES} attributes`);
    // Only four names matter; most of Postfix's ~30 attributes are skipped by length alone.
    if (eq !== 4 && eq !== 7 && eq !== 9 && eq !== 11 && eq !== 14) return;
    switch (line.toString('latin1', 0, eq)) {
      case 'request':
        this.request = line.toString('latin1', eq + 1);
        break;
      case 'protocol_state':
        this.state = line.toString('latin1', eq + 1);
        break;
      case 'recipient':
        this.recipient = Buffer.from(line.subarray(eq + 1));
        break;
      case 'client_address':
        this.clientAddress = line.toString('latin1', eq + 1);
        break;
      case 'client_port':
        this.clientPort = line.toString('latin1', eq + 1);
        break;
      case 'size':
        this.sizeText = line.toString('latin1', eq + 1);
        this.size = parsePolicySize(this.sizeText);
        break;
    }
  }

  private endRequest(): void {
    if (this.attrs === 0) return this.malformed('an empty request');
    if (this.request !== 'smtpd_access_policy') return this.malformed(`request=${this.request || '(missing)'}, not smtpd_access_policy`);
    const client = this.clientAddress === '' ? '' : this.clientPort === '' ? this.clientAddress : `${this.clientAddress}:${this.clientPort}`;
    const req: PolicyRequest = { request: this.request, state: this.state, recipient: this.recipient, size: this.size, sizeText: this.sizeText, client };
    if (req.size === null && req.recipient !== null && req.recipient.length > 0) this.badSize(req.sizeText);
    this.attrs = 0;
    this.request = this.state = this.clientAddress = this.clientPort = '';
    this.recipient = null;
    this.size = 0;
    this.sizeText = '0';
    this.handle(req, req);
  }

  /** A size that is not a byte count: answered DUNNO (policy-answers.ts), said once per peer and window. */
  private badSize(text: string): void {
    this.noticeLimited(`policy request from ${this.client}: size=${auditField(text, 64)} is not a byte count; answered DUNNO`);
  }

  /** Logged and closed without a reply: Postfix answers its client with its own temporary error. */
  private malformed(reason: string): void {
    this.protocolError('policy protocol error', reason, '');
  }

  protected answer(req: PolicyRequest): PolicyResponse | Promise<PolicyResponse> {
    return this.ctx.policy.answer(req);
  }

  protected answered(a: PolicyResponse, req: PolicyRequest, since: bigint): void {
    const m = this.ctx.metrics;
    if (m) {
      if (a.status !== '') m.answered(a.status, a.outcome, POLICY, since);
      m.policyAction(a.kind);
    }
    if (this.ctx.audit) {
      const size = req.size !== null && Number.isFinite(req.size) ? String(req.size) : auditField(req.sizeText, 64);
      const outcome = a.kind === 'norecipient' || a.kind === 'badsize' ? a.kind : a.outcome;
      this.audit(outcome, a.key, req.client !== '' ? auditField(req.client) : this.client, ` state=<${auditField(req.state)}> size=<${size}> action=<${a.kind}>`);
    }
  }
}
