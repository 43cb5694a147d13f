// What every connection does whatever protocol it speaks (socketmap in session.ts, policy
// delegation in policy-session.ts), whatever carries it (a socket, or stdin/stdout): replies
// go out in request order even when some answers arrive later (IMAP store, directory maps);
// past a bound of replies not yet written, and while the client does not read them, the
// input is not read; an idle timeout; SIGTERM's drain; a refused request closes the
// connection after the replies before it. Every end of a connection goes through endGently()
// (refusal, drain, the client's own close) or destroy() (idle, I/O error, linger over):
// once our side is done the input is read and dropped, never left paused, so a client that
// closes is always seen. A protocol supplies its framing (decode), its answers (answer) and
// what an answer is logged and counted as (answered); a malformed request goes through
// protocolError() whatever the protocol.
import type { Duplex, Readable, Writable } from 'node:stream';
import { keepPolling } from '../busy-poll';
import { isPromise } from '../core/contract';
import { auditField, type Logger, type LogRateLimiter } from '../log';
import { Metrics } from './metrics';
import { formatPeer, type Peer } from './peer';

/**
 * What every connection needs, whatever its protocol; a protocol's session adds its own
 * answerer (session.ts, policy-session.ts). Shared by all sessions of a process: the service
 * swaps its fields on reload (SIGHUP).
 */
export interface ConnectionContext {
  maxRequest: number;
  /** Idle ms before the connection is closed; 0 = never. */
  idleTimeoutMs: number;
  log: Logger;
  audit: boolean;
  /** Bounds protocol-error lines per peer address (whoever can connect could flood the log). */
  protocolErrors?: LogRateLimiter;
  /** smmapd_metrics_listen set: answers are counted and timed. */
  metrics?: Metrics | null;
}

/** After our last byte went out, how long the client may keep the connection open before it is dropped. */
export const CLOSE_LINGER_MS = 1000;

/**
 * Our side of a socket is done: write `last`, send FIN, and read and drop whatever the client
 * still sends, so that its close (FIN or RST) is seen and the socket freed; a client that
 * keeps it open is dropped CLOSE_LINGER_MS after our last byte was handed to the kernel (by
 * then the bytes are queued for it: closing with nothing unread sends them, then FIN).
 * Returns a function that cancels the linger (the socket closed on its own).
 */
export function endGently(sock: Duplex, last = ''): () => void {
  let linger: NodeJS.Timeout | null = null;
  sock.resume();
  const lingered = (): void => {
    if (sock.destroyed) return;
    linger = setTimeout(() => sock.destroy(), CLOSE_LINGER_MS);
    linger.unref();
  };
  if (last === '') sock.end(lingered);
  else sock.end(last, lingered);
  return () => {
    if (linger !== null) clearTimeout(linger);
  };
}

/** A reply not yet written: its place in the order is kept while its answer is awaited. */
interface Pending {
  wire: string | null;
  /** Written last, then the connection closes (a refused request). */
  readonly final: boolean;
}

/**
 * R is a request as decoded (valid only during answer()), T what answer() and answered()
 * need of it besides (kept until the answer is settled), A an answer (its wire bytes and
 * whatever the log and metrics need).
 */
export abstract class Connection<C extends ConnectionContext, R, T, A extends { readonly wire: string }> {
  readonly done: Promise<void>;
  private readonly pending: Pending[] = [];
  private out = '';
  protected reading = true;
  private closing = false;
  private inputEnded = false;
  private finished = false;
  private awaitingDrain = false;
  private cancelLinger: (() => void) | null = null;
  private resolveDone!: () => void;
  private readonly timer: NodeJS.Timeout | null;
  /** A socket is input and output at once; stdin/stdout are two streams. */
  private readonly duplex: boolean;
  /** The peer as log and audit lines print it. */
  protected readonly client: string;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    readonly peer: Peer,
    protected readonly ctx: C,
    /** Replies not yet written past which we stop reading (pipelining bound). */
    private readonly maxPending: number,
    /** What a bug on the answer path gets: a temporary failure, never an accept. */
    private readonly internalFailure: A,
  ) {
    this.duplex = (input as unknown) === output;
    this.client = formatPeer(peer);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.timer = ctx.idleTimeoutMs > 0 ? setTimeout(() => this.onIdle(), ctx.idleTimeoutMs) : null;
    input.on('data', this.onData);
    input.on('end', this.onEnd);
    input.on('error', this.onStreamError);
    if (!this.duplex) output.on('error', this.onStreamError);
    // stdout never emits 'close' reliably; 'finish' says our last reply is out.
    if (this.duplex) output.on('close', this.onClosed);
    else output.on('finish', this.onClosed);
  }

  /** Feed the framing; it calls handle() per request and protocolError() for a bad one. */
  protected abstract decode(chunk: Buffer): void;
  /** The answer to one request (may throw or reject: that is a bug, answered internalFailure). */
  protected abstract answer(req: R, tag: T): A | Promise<A>;
  /** An answer is settled: audit line, metrics. */
  protected abstract answered(a: A, tag: T, since: bigint): void;
  /** The client closed its side (a request cut short may be refused here). */
  protected decodeEnd(): void {}
  /** Take no more requests. */
  protected decodeStop(): void {}

  private readonly onData = (chunk: Buffer): void => {
    keepPolling(); // the answer, and the client's next request, may come within the window
    if (!this.reading) return;
    this.timer?.refresh();
    this.decode(chunk);
    this.flush();
  };

  /** One decoded request: answer it, its reply keeps its place in the order. */
  protected handle(req: R, tag: T): void {
    if (!this.reading) return;
    const since = this.ctx.metrics ? Metrics.now() : 0n;
    let a;
    try {
      a = this.answer(req, tag);
    } catch (e) {
      a = this.internalError(e);
    }
    if (!isPromise(a)) {
      this.answered(a, tag, since);
      if (this.pending.length === 0) this.out += a.wire;
      else this.pending.push({ wire: a.wire, final: false });
    } else {
      const slot: Pending = { wire: null, final: false };
      this.pending.push(slot);
      const settle = (answer: A): void => {
        slot.wire = answer.wire;
        this.answered(answer, tag, since);
        this.flush();
      };
      a.then(settle, (e: unknown) => settle(this.internalError(e)));
    }
    // Answers queued behind a slow one count too: stop reading until they are written.
    if (this.pending.length >= this.maxPending) this.input.pause();
  }

  /** answer() never throws: reaching this is a bug, not the client's fault. */
  private internalError(e: unknown): A {
    this.ctx.log.error(`internal error answering ${this.client}: ${(e as Error)?.stack ?? String(e)}`);
    return this.internalFailure;
  }

  /** A notice about this peer's requests, bounded per peer address (whoever can connect could flood the log). */
  protected noticeLimited(line: string): void {
    if (this.ctx.protocolErrors?.allow(this.peer.address) ?? true) this.ctx.log.notice(line);
  }

  /**
   * A malformed request, in either protocol: the notice (`<what> from <peer>: <reason>;
   * closing`), a failed audit line, the count; then `wire` (may be empty) after the replies
   * before it, and the close.
   */
  protected protocolError(what: string, reason: string, wire: string): void {
    this.noticeLimited(`${what} from ${this.client}: ${reason}; closing`);
    this.audit('failed', '');
    if (this.ctx.metrics) this.ctx.metrics.protocolErrors++;
    this.refuse(wire);
  }

  /** Cyrus's auditlog_client() line: `auditlog: <outcome> userid=<key> client=<peer>`, then a protocol's own fields. */
  protected audit(outcome: string, key: string, client = this.client, more = ''): void {
    if (this.ctx.audit) this.ctx.log.audit(`auditlog: ${outcome} userid=<${auditField(key)}> client=<${client}>${more}`);
  }

  /** A bad request: read no more, write `wire` (may be empty) after the replies before it, close. */
  private refuse(wire: string): void {
    this.stopReading();
    if (this.pending.length === 0) {
      this.out += wire;
      this.closing = true;
    } else {
      this.pending.push({ wire, final: true });
    }
  }

  /** Write everything that is ready, in order; close when the last reply is out. */
  private flush(): void {
    while (this.pending.length > 0) {
      const head = this.pending[0]!;
      if (head.final) {
        this.out += head.wire;
        this.pending.length = 0;
        this.closing = true;
        break;
      }
      if (head.wire === null) break;
      this.out += head.wire;
      this.pending.shift();
    }
    if (this.out !== '' && !this.finished) {
      const ok = this.output.write(this.out);
      this.out = '';
      if (!ok && !this.awaitingDrain) {
        this.awaitingDrain = true;
        // (once we have stopped reading, the input stays flowing: bytes dropped, a close seen)
        if (this.reading) this.input.pause();
        this.output.once('drain', () => {
          this.awaitingDrain = false;
          this.resumeInput();
        });
      }
    }
    if (this.pending.length < this.maxPending / 2 && this.reading) this.resumeInput();
    if ((this.closing || this.inputEnded) && this.pending.length === 0) this.endOutput();
  }

  private resumeInput(): void {
    if (this.reading && !this.output.writableNeedDrain && this.pending.length < this.maxPending) this.input.resume();
  }

  /**
   * Decode nothing more. A socket goes on being read, its bytes dropped: paused, it would
   * never see the client's FIN or RST (stdin need not be read: endOutput destroys it).
   */
  private stopReading(): void {
    this.reading = false;
    this.decodeStop();
    if (this.duplex) this.input.resume();
    else this.input.pause();
  }

  private readonly onEnd = (): void => {
    if (this.reading) this.decodeEnd();
    this.inputEnded = true;
    this.flush();
  };

  /**
   * No byte from the client for the timeout (or, once we have stopped reading, the client
   * neither reads our last reply nor closes): drop it. A paused input stops the timer from
   * being refreshed, so a client that went away while we waited on it is dropped too.
   */
  private onIdle(): void {
    this.ctx.log.info(`idle timeout (${this.ctx.idleTimeoutMs / 1000} s) for ${this.client}; closing`);
    this.destroy();
  }

  /** SIGTERM: answer what has fully arrived, take nothing more, then close. */
  drain(): void {
    if (this.finished) return;
    this.stopReading();
    this.closing = true;
    this.flush();
  }

  /**
   * Every reply is out (replies still pending were waited for). On a socket: FIN, then the
   * client's close or the linger (a pooled client, Postfix or Sendmail, may keep its end open
   * and never see our FIN until its next request; a refused one may never close). The idle
   * timer keeps running, no longer refreshed: it bounds a client that does not read.
   */
  private endOutput(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.duplex) {
      this.cancelLinger = endGently(this.input as unknown as Duplex);
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.output.end();
    this.input.pause();
    // stdin need not be read to its end once we are done
    (this.input as Readable & { destroy?: () => void }).destroy?.();
  }

  private readonly onStreamError = (e: Error): void => {
    this.ctx.log.debug(`connection ${this.client}: ${e.message}`);
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
    this.cancelLinger?.();
    this.finished = true;
    this.resolveDone();
  };
}
