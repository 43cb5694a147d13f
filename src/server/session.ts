// One socketmap connection: a malformed frame gets `PERM Bad protocol (...)` and the
// connection is closed without reading on. Order, bounds, backpressure, idle timeout and
// drain are Connection's (connection.ts), shared with the policy service.
import type { Readable, Writable } from 'node:stream';
import { keyOffset, NetstringDecoder, encodeNetstring, type FrameError } from '../core/netstring';
import { badProtocol, replyPayload, storeFailure } from '../core/reply';
import { auditField, peerAddress, type Logger, type LogRateLimiter } from '../log';
import type { Answer } from './answers';
import { Connection } from './connection';
import type { Metrics } from './metrics';
import type { PolicyAnswerer } from './policy-answers';

/** What a session asks for answers (the Answerer, or a test's script). */
export interface Answering {
  /** A request arrived: a cache may look whether the store changed. */
  refresh(): void;
  /** The answer to one key (`frame` is the whole request, for the map name). */
  answer(key: Buffer, frame: Buffer): Answer | Promise<Answer>;
}

/** Shared by all sessions of a process; the service swaps its fields on reload (SIGHUP). */
export interface SessionContext {
  answerer: Answering;
  maxRequest: number;
  /** Idle ms before the connection is closed; 0 = never. */
  idleTimeoutMs: number;
  log: Logger;
  audit: boolean;
  /** Bounds protocol-error lines per peer address (whoever can connect could flood the log). */
  protocolErrors?: LogRateLimiter;
  /** smmapd --policy: connections speak the policy delegation protocol (policy-session.ts). */
  policy?: PolicyAnswerer;
  /** smmapd_metrics_listen set: answers are counted and timed. */
  metrics?: Metrics | null;
}

/** Replies not yet written past which we stop reading (pipelining bound). */
const MAX_PENDING = 1024;

/** What a bug on the answer path gets: TEMP, never OK, and the connection keeps serving. */
const INTERNAL_ERROR: Answer = { wire: encodeNetstring(replyPayload(storeFailure('internal error'))), outcome: 'failed', status: 'TEMP', key: '' };

/** A socketmap connection: netstring framing, answers from the Answerer; the rest is Connection's. */
export class Session extends Connection<Buffer, number, Answer> {
  private readonly decoder: NetstringDecoder;

  constructor(input: Readable, output: Writable, peer: string, ctx: SessionContext) {
    super(input, output, peer, ctx, MAX_PENDING, INTERNAL_ERROR);
    this.decoder = new NetstringDecoder(ctx.maxRequest, (f) => this.onFrame(f), (r) => this.onBadFrame(r));
  }

  protected decode(chunk: Buffer): void {
    this.ctx.answerer.refresh();
    this.decoder.push(chunk);
  }

  protected override decodeEnd(): void {
    this.decoder.end();
  }

  protected override decodeStop(): void {
    this.decoder.stop();
  }

  private onFrame(frame: Buffer): void {
    if (!this.reading) return;
    const off = keyOffset(frame);
    if (off < 0) return this.onBadFrame('missing key');
    // the map's label for the metrics (never the client's word); the frame is valid only during this call
    const m = this.ctx.metrics;
    this.handle(frame, m ? m.labelOf(frame.toString('latin1', 0, off - 1)) : 0);
  }

  protected answer(frame: Buffer): Answer | Promise<Answer> {
    return this.ctx.answerer.answer(frame.subarray(keyOffset(frame)), frame);
  }

  protected answered(a: Answer, label: number, since: bigint): void {
    this.audit(a);
    this.ctx.metrics?.answered(a.status, a.outcome, label, since);
  }

  private onBadFrame(reason: FrameError): void {
    if (this.ctx.protocolErrors?.allow(peerAddress(this.peer)) ?? true) this.ctx.log.notice(`protocol error from ${this.peer}: ${reason}; closing`);
    this.audit({ outcome: 'failed', key: '' });
    if (this.ctx.metrics) this.ctx.metrics.protocolErrors++;
    this.refuse(encodeNetstring(replyPayload(badProtocol(reason))));
  }

  /** Cyrus's auditlog_client() line: `auditlog: <outcome> userid=<key> client=<peer>`. */
  private audit(a: Pick<Answer, 'outcome' | 'key'>): void {
    if (this.ctx.audit) this.ctx.log.audit(`auditlog: ${a.outcome} userid=<${auditField(a.key)}> client=<${this.peer}>`);
  }
}
