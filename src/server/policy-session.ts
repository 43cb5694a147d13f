// One Postfix policy delegation connection (SMTPD_POLICY_README), whatever carries it: a
// request is `name=value` lines ended by an empty line, the reply one `action=...` line and
// an empty line; many requests per connection, answered in order. Lines are bounded by
// smmapd_max_request bytes and a request by MAX_ATTRIBUTES; anything else (a line without
// `=`, an over-long line, too many attributes, a request that is not smtpd_access_policy)
// is logged and the connection closed without a reply: Postfix then logs the problem and
// answers the client with its own temporary error, never with an accept.
// The same surface as Session (done, drain, destroy), so every process model serves either.
import type { Readable, Writable } from 'node:stream';
import { isPromise } from '../core/policy';
import { auditField, peerAddress } from '../log';
import { Metrics } from './metrics';
import type { PolicyAnswer, PolicyAnswerer, PolicyRequest } from './policy-answers';
import type { SessionContext } from './session';

/** Postfix 3.7 sends about 35 attributes; a request with far more is not Postfix. */
export const MAX_ATTRIBUTES = 256;

/** Complete requests waiting behind one in progress past which we stop reading. */
const MAX_QUEUED = 64;

const DRAIN_LINGER_MS = 1000;

/** What a bug on the answer path gets: defer, never accept. */
const INTERNAL_ERROR: PolicyAnswer = { wire: 'action=DEFER_IF_PERMIT internal error\n\n', kind: 'failure', status: 'TEMP', outcome: 'failed', key: '' };

interface Queued {
  readonly req: PolicyRequest;
  readonly since: bigint;
}

export class PolicySession {
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private carry: Buffer | null = null;
  // the request being read
  private attrs = 0;
  private request = '';
  private state = '';
  private recipient: Buffer | null = null;
  private size = 0;
  private readonly queue: Queued[] = [];
  private busy = false;
  private reading = true;
  private closing = false;
  private finished = false;
  private draining = false;
  private awaitingDrain = false;
  private readonly timer: NodeJS.Timeout | null;
  private readonly duplex: boolean;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    readonly peer: string,
    private readonly ctx: SessionContext,
  ) {
    this.duplex = (input as unknown) === output;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.timer = ctx.idleTimeoutMs > 0 ? setTimeout(() => this.onIdle(), ctx.idleTimeoutMs) : null;
    input.on('data', this.onData);
    input.on('end', this.onEnd);
    input.on('error', this.onStreamError);
    if (!this.duplex) output.on('error', this.onStreamError);
    if (this.duplex) output.on('close', this.onClosed);
    else output.on('finish', this.onClosed);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (!this.reading) return;
    this.timer?.refresh();
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
    this.next();
  };

  private attribute(line: Buffer): void {
    const eq = line.indexOf(0x3d);
    if (eq <= 0) return this.malformed('a line that is not name=value');
    if (++this.attrs > MAX_ATTRIBUTES) return this.malformed(`more than ${MAX_ATTRIBUTES} attributes`);
    // Only four names matter; most of Postfix's ~30 attributes are skipped by length alone.
    if (eq !== 4 && eq !== 7 && eq !== 9 && eq !== 14) return;
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
      case 'size': {
        const v = line.toString('latin1', eq + 1);
        this.size = /^\d{1,15}$/.test(v) ? Number(v) : 0;
        break;
      }
    }
  }

  private endRequest(): void {
    if (this.attrs === 0) return this.malformed('an empty request');
    if (this.request !== 'smtpd_access_policy') return this.malformed(`request=${this.request || '(missing)'}, not smtpd_access_policy`);
    this.queue.push({ req: { request: this.request, state: this.state, recipient: this.recipient, size: this.size }, since: this.ctx.metrics ? Metrics.now() : 0n });
    this.attrs = 0;
    this.request = this.state = '';
    this.recipient = null;
    this.size = 0;
    if (this.queue.length >= MAX_QUEUED) this.input.pause();
  }

  private malformed(reason: string): void {
    if (this.ctx.protocolErrors?.allow(peerAddress(this.peer)) ?? true) {
      this.ctx.log.notice(`policy protocol error from ${this.peer}: ${reason}; closing`);
    }
    if (this.ctx.metrics) this.ctx.metrics.protocolErrors++;
    if (this.ctx.audit) this.ctx.log.audit(`auditlog: failed userid=<> client=<${this.peer}>`);
    this.stopReading();
    this.closing = true;
    this.next();
  }

  /** Answer queued requests in order, one at a time. */
  private next(): void {
    while (!this.busy && this.queue.length > 0 && !this.finished) {
      const q = this.queue.shift()!;
      let a;
      try {
        a = this.policy().answer(q.req);
      } catch (e) {
        a = this.internalError(e);
      }
      if (isPromise(a)) {
        this.busy = true;
        const settle = (x: PolicyAnswer): void => {
          this.busy = false;
          this.write(x, q);
          this.next();
        };
        a.then(settle, (e: unknown) => settle(this.internalError(e)));
        return;
      }
      this.write(a, q);
    }
    if (this.reading && this.queue.length < MAX_QUEUED / 2 && !this.awaitingDrain) this.input.resume();
    if (!this.busy && this.queue.length === 0 && this.closing) this.endOutput();
  }

  private policy(): PolicyAnswerer {
    const p = this.ctx.policy;
    if (p === undefined) throw new Error('policy session without a policy answerer');
    return p;
  }

  private internalError(e: unknown): PolicyAnswer {
    this.ctx.log.error(`internal error answering ${this.peer}: ${(e as Error)?.stack ?? String(e)}`);
    return INTERNAL_ERROR;
  }

  private write(a: PolicyAnswer, q: Queued): void {
    const m = this.ctx.metrics;
    if (m) {
      if (a.status !== '') m.answered(a.status, a.outcome, 'policy', q.since);
      m.policyAction(a.kind);
    }
    if (this.ctx.audit) {
      this.ctx.log.audit(`auditlog: ${a.kind === 'norecipient' ? 'norecipient' : a.outcome} userid=<${auditField(a.key)}> client=<${this.peer}> state=<${auditField(q.req.state)}> size=<${q.req.size}> action=<${a.kind}>`);
    }
    if (this.finished) return;
    if (!this.output.write(a.wire) && !this.awaitingDrain) {
      this.awaitingDrain = true;
      this.input.pause();
      this.output.once('drain', () => {
        this.awaitingDrain = false;
        if (this.reading) this.input.resume();
      });
    }
  }

  private stopReading(): void {
    this.reading = false;
    this.input.pause();
  }

  private readonly onEnd = (): void => {
    // A request cut short by the client's close is not answered.
    this.reading = false;
    this.closing = true;
    this.next();
  };

  private onIdle(): void {
    this.ctx.log.info(`idle timeout (${this.ctx.idleTimeoutMs / 1000} s) for ${this.peer}; closing`);
    this.destroy();
  }

  /** SIGTERM: answer the requests that have fully arrived, take nothing more, then close. */
  drain(): void {
    if (this.finished) return;
    this.draining = true;
    this.stopReading();
    this.closing = true;
    this.next();
  }

  private endOutput(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.output.end();
    if (this.draining) setTimeout(() => this.destroy(), DRAIN_LINGER_MS).unref();
    if (!this.duplex) {
      this.input.pause();
      (this.input as Readable & { destroy?: () => void }).destroy?.();
    }
  }

  private readonly onStreamError = (e: Error): void => {
    this.ctx.log.debug(`connection ${this.peer}: ${e.message}`);
    this.destroy();
  };

  destroy(): void {
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.input.destroy();
    if (!this.duplex) this.output.destroy();
    this.onClosed();
  }

  private readonly onClosed = (): void => {
    if (this.timer) clearTimeout(this.timer);
    this.finished = true;
    this.resolveDone();
  };
}
