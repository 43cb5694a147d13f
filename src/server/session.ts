// One socketmap connection: each netstring is decoded once into its map name and key, the
// router (router.ts) picks who answers it; a malformed frame gets `PERM Bad protocol (...)`
// and the connection is closed without reading on. Order, bounds, backpressure, idle timeout
// and drain are Connection's (connection.ts), shared with the policy service.
import type { Readable, Writable } from 'node:stream';
import { keyOffset, NetstringDecoder, encodeNetstring, type FrameError } from '../core/netstring';
import { badProtocol, replyPayload, storeFailure } from '../core/reply';
import type { Answer } from './answers';
import { Connection, type ConnectionContext } from './connection';
import type { Peer } from './peer';
import type { MapRouter, Route } from './router';

/** A socketmap connection's context: the common one and the router. */
export interface SocketmapContext extends ConnectionContext {
  router: MapRouter;
}

/** Replies not yet written past which we stop reading (pipelining bound). */
const MAX_PENDING = 1024;

/** What a bug on the answer path gets: TEMP, never OK, and the connection keeps serving. */
const INTERNAL_ERROR: Answer = { wire: encodeNetstring(replyPayload(storeFailure('internal error'))), outcome: 'failed', status: 'TEMP', key: '' };

/** A socketmap connection: netstring framing, a request's key answered where its route says. */
export class SocketmapSession extends Connection<SocketmapContext, Buffer, Route, Answer> {
  private readonly decoder: NetstringDecoder;

  constructor(input: Readable, output: Writable, peer: Peer, ctx: SocketmapContext) {
    super(input, output, peer, ctx, MAX_PENDING, INTERNAL_ERROR);
    this.decoder = new NetstringDecoder(ctx.maxRequest, (f) => this.onFrame(f), (r) => this.onBadFrame(r));
  }

  protected decode(chunk: Buffer): void {
    this.ctx.router.newBatch();
    this.decoder.push(chunk);
  }

  protected override decodeEnd(): void {
    this.decoder.end();
  }

  protected override decodeStop(): void {
    this.decoder.stop();
  }

  /** `<map> <key>`: split once; the frame (and the key, a view of it) is valid only during this call. */
  private onFrame(frame: Buffer): void {
    if (!this.reading) return;
    const off = keyOffset(frame);
    if (off < 0) return this.onBadFrame('missing key');
    this.handle(frame.subarray(off), this.ctx.router.route(frame, off - 1));
  }

  protected answer(key: Buffer, route: Route): Answer | Promise<Answer> {
    return route.answers.answer(key);
  }

  protected answered(a: Answer, route: Route, since: bigint): void {
    this.audit(a.outcome, a.key);
    this.ctx.metrics?.answered(a.status, a.outcome, route.label, since);
  }

  private onBadFrame(reason: FrameError): void {
    this.protocolError('protocol error', reason, encodeNetstring(replyPayload(badProtocol(reason))));
  }
}
