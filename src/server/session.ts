// One socketmap connection, whatever carries it (a socket, or stdin/stdout). Replies go out
// in request order even when some answers arrive later (IMAP store); a malformed frame gets
// `PERM Bad protocol (...)` and the connection is closed without reading on; a client that
// does not read its replies is not read from until it does.
import type { Readable, Writable } from 'node:stream';
import { keyOffset, NetstringDecoder, encodeNetstring, type FrameError } from '../core/netstring';
import { isPromise } from '../core/policy';
import { badProtocol, replyPayload, storeFailure } from '../core/reply';
import { auditField, peerAddress, type Logger, type LogRateLimiter } from '../log';
import type { Answer } from './answers';
import { Metrics } from './metrics';
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

/** After a drain, how long the client may keep the connection open before it is dropped. */
const DRAIN_LINGER_MS = 1000;

/** Requests answered but not yet written past which we stop reading (pipelining bound). */
const MAX_PENDING = 1024;

/** What a bug on the answer path gets: TEMP, never OK, and the connection keeps serving. */
const INTERNAL_ERROR: Answer = { wire: encodeNetstring(replyPayload(storeFailure('internal error'))), outcome: 'failed', status: 'TEMP', key: '' };

interface Pending {
  answer: Answer | null;
  /** Written last, then the connection closes (protocol error). */
  readonly final: string | null;
}

export class Session {
  readonly done: Promise<void>;
  private readonly decoder: NetstringDecoder;
  private readonly pending: Pending[] = [];
  private out = '';
  private reading = true;
  private closing = false;
  private inputEnded = false;
  private finished = false;
  /** SIGTERM: once the last reply is out, the client gets a moment to read it, then is dropped. */
  private draining = false;
  private awaitingDrain = false;
  private resolveDone!: () => void;
  private readonly timer: NodeJS.Timeout | null;
  /** A socket is input and output at once; stdin/stdout are two streams. */
  private readonly duplex: boolean;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    readonly peer: string,
    private readonly ctx: SessionContext,
  ) {
    this.duplex = (input as unknown) === output;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.decoder = new NetstringDecoder(ctx.maxRequest, (f) => this.onFrame(f), (r) => this.onBadFrame(r));
    this.timer = ctx.idleTimeoutMs > 0 ? setTimeout(() => this.onIdle(), ctx.idleTimeoutMs) : null;
    input.on('data', this.onData);
    input.on('end', this.onEnd);
    input.on('error', this.onStreamError);
    if (!this.duplex) output.on('error', this.onStreamError);
    // stdout never emits 'close' reliably; 'finish' says our last reply is out.
    if (this.duplex) output.on('close', this.onClosed);
    else output.on('finish', this.onClosed);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (!this.reading) return;
    this.timer?.refresh();
    this.ctx.answerer.refresh();
    this.decoder.push(chunk);
    this.flush();
  };

  private onFrame(frame: Buffer): void {
    if (!this.reading) return;
    const off = keyOffset(frame);
    if (off < 0) return this.onBadFrame('missing key');
    const m = this.ctx.metrics;
    const since = m ? Metrics.now() : 0n;
    const map = m ? frame.toString('latin1', 0, off - 1) : '';
    let a;
    try {
      a = this.ctx.answerer.answer(frame.subarray(off), frame);
    } catch (e) {
      a = this.internalError(e);
    }
    if (!isPromise(a)) {
      this.audit(a);
      if (m) m.answered(a.status, a.outcome, map, since);
      if (this.pending.length === 0) this.out += a.wire;
      else this.pending.push({ answer: a, final: null });
    } else {
      const slot: Pending = { answer: null, final: null };
      this.pending.push(slot);
      const settle = (answer: Answer): void => {
        slot.answer = answer;
        this.audit(answer);
        if (m) m.answered(answer.status, answer.outcome, map, since);
        this.flush();
      };
      a.then(settle, (e: unknown) => settle(this.internalError(e)));
    }
    // Answers queued behind a slow one count too: stop reading until they are written.
    if (this.pending.length >= MAX_PENDING) this.pauseInput();
  }

  /** verify() never throws: reaching this is a bug, not the client's fault. */
  private internalError(e: unknown): Answer {
    this.ctx.log.error(`internal error answering ${this.peer}: ${(e as Error)?.stack ?? String(e)}`);
    return INTERNAL_ERROR;
  }

  private onBadFrame(reason: FrameError): void {
    if (this.ctx.protocolErrors?.allow(peerAddress(this.peer)) ?? true) this.ctx.log.notice(`protocol error from ${this.peer}: ${reason}; closing`);
    this.audit({ outcome: 'failed', key: '' });
    if (this.ctx.metrics) this.ctx.metrics.protocolErrors++;
    this.stopReading();
    const wire = encodeNetstring(replyPayload(badProtocol(reason)));
    if (this.pending.length === 0) {
      this.out += wire;
      this.closing = true;
    } else {
      this.pending.push({ answer: null, final: wire });
    }
  }

  /** Cyrus's auditlog_client() line: `auditlog: <outcome> userid=<key> client=<peer>`. */
  private audit(a: Pick<Answer, 'outcome' | 'key'>): void {
    if (this.ctx.audit) this.ctx.log.audit(`auditlog: ${a.outcome} userid=<${auditField(a.key)}> client=<${this.peer}>`);
  }

  /** Write everything that is ready, in order; close when the last reply is out. */
  private flush(): void {
    while (this.pending.length > 0) {
      const head = this.pending[0]!;
      if (head.final !== null) {
        this.out += head.final;
        this.pending.length = 0;
        this.closing = true;
        break;
      }
      if (head.answer === null) break;
      this.out += head.answer.wire;
      this.pending.shift();
    }
    if (this.out !== '' && !this.finished) {
      const ok = this.output.write(this.out);
      this.out = '';
      if (!ok && !this.awaitingDrain) {
        this.awaitingDrain = true;
        this.pauseInput();
        this.output.once('drain', () => {
          this.awaitingDrain = false;
          this.resumeInput();
        });
      }
    }
    if (this.pending.length < MAX_PENDING / 2 && this.reading) this.resumeInput();
    if ((this.closing || this.inputEnded) && this.pending.length === 0) this.endOutput();
  }

  private pauseInput(): void {
    this.input.pause();
  }

  private resumeInput(): void {
    if (this.reading && !this.output.writableNeedDrain && this.pending.length < MAX_PENDING) this.input.resume();
  }

  private stopReading(): void {
    this.reading = false;
    this.decoder.stop();
    this.input.pause();
  }

  private readonly onEnd = (): void => {
    this.decoder.end();
    this.inputEnded = true;
    this.flush();
  };

  private onIdle(): void {
    this.ctx.log.info(`idle timeout (${this.ctx.idleTimeoutMs / 1000} s) for ${this.peer}; closing`);
    this.destroy();
  }

  /** SIGTERM: answer what has fully arrived, take nothing more, then close. */
  drain(): void {
    if (this.finished) return;
    this.draining = true;
    this.stopReading();
    this.closing = true;
    this.flush();
  }

  private endOutput(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.output.end();
    // A pooled client (Postfix, Sendmail) may keep its end open and never see our FIN until
    // its next request: once it has had a moment to read our last replies, drop it, so that
    // shutdown is not held up until the drain bound. Replies still pending are waited for.
    if (this.draining) setTimeout(() => this.destroy(), DRAIN_LINGER_MS).unref();
    if (!this.duplex) {
      this.input.pause();
      // stdin need not be read to its end once we are done
      (this.input as Readable & { destroy?: () => void }).destroy?.();
    }
  }

  private readonly onStreamError = (e: Error): void => {
    this.ctx.log.debug(`connection ${this.peer}: ${e.message}`);
    this.destroy();
  };

  /** Drop the connection at once (idle, I/O error, forced shutdown). */
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
