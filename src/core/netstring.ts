// Socketmap framing (behaviour §1): `<decimal length>:<bytes>,`. A streaming decoder that takes
// whatever chunks the socket delivers (pipelined requests, one request split over many
// writes) and an encoder for replies. Pure: no sockets here.

/** Why a frame was refused. The first four are Cyrus's own reasons (imap/smmapd.c). */
export type FrameError =
  | 'missing length'
  | "request size doesn't match length"
  | 'missing terminator'
  | 'missing key'
  | 'request too long';

const COLON = 0x3a;
const COMMA = 0x2c;
const SPACE = 0x20;
const ZERO = 0x30;
const NINE = 0x39;

const enum State { Length, Body, Terminator, Failed }

/**
 * Feed chunks with `push`; it calls `onFrame` for each complete frame (a view into the chunk
 * or a copy when the frame spanned chunks; valid only during the call) and `onError` once
 * for the first malformed frame, after which it ignores all further input (never re-parse
 * the bytes after a bad frame).
 */
export class NetstringDecoder {
  private state = State.Length;
  private digits = 0;
  private length = 0;
  private body: Buffer | null = null;
  private filled = 0;
  private readonly maxDigits: number;

  constructor(
    private readonly maxLength: number,
    private readonly onFrame: (frame: Buffer) => void,
    private readonly onError: (reason: FrameError) => void,
  ) {
    this.maxDigits = String(maxLength).length;
  }

  /** True between frames: nothing of a request has arrived yet. */
  get idle(): boolean {
    return this.state === State.Length && this.digits === 0;
  }

  get failed(): boolean {
    return this.state === State.Failed;
  }

  private fail(reason: FrameError): void {
    this.state = State.Failed;
    this.body = null;
    this.onError(reason);
  }

  /** Take no more frames (the caller refused one, or is shutting down). */
  stop(): void {
    this.state = State.Failed;
    this.body = null;
  }

  /** The peer closed its side: a request cut short is Cyrus's "request size doesn't match length". */
  end(): void {
    if (this.state === State.Failed || this.idle) return;
    this.fail(this.state === State.Length ? 'missing length' : "request size doesn't match length");
  }

  push(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.state) {
        case State.Failed:
          return;
        case State.Length: {
          const c = chunk[i++]!;
          if (c >= ZERO && c <= NINE) {
            if (++this.digits > this.maxDigits) return this.fail('request too long');
            this.length = this.length * 10 + (c - ZERO);
          } else if (c === COLON && this.digits > 0) {
            if (this.length > this.maxLength) return this.fail('request too long');
            // Fast path: the whole body and terminator are in this chunk, hand out a view.
            if (n - i > this.length) {
              const end = i + this.length;
              if (chunk[end] !== COMMA) return this.fail('missing terminator');
              this.reset();
              this.onFrame(chunk.subarray(i, end));
              if (this.failed) return; // onFrame may stop() us
              i = end + 1;
            } else {
              this.state = State.Body;
              this.body = Buffer.allocUnsafe(this.length);
              this.filled = 0;
            }
          } else {
            return this.fail('missing length');
          }
          break;
        }
        case State.Body: {
          const take = Math.min(this.length - this.filled, n - i);
          chunk.copy(this.body!, this.filled, i, i + take);
          this.filled += take;
          i += take;
          if (this.filled === this.length) this.state = State.Terminator;
          break;
        }
        case State.Terminator: {
          if (chunk[i++] !== COMMA) return this.fail('missing terminator');
          const body = this.body!;
          this.reset();
          this.onFrame(body);
          break;
        }
      }
    }
  }

  private reset(): void {
    this.state = State.Length;
    this.digits = 0;
    this.length = 0;
    this.body = null;
    this.filled = 0;
  }
}

/** Split a request at its FIRST space: the map name (ignored) and the key; -1 = no space. */
export function keyOffset(request: Buffer): number {
  const sp = request.indexOf(SPACE);
  return sp < 0 ? -1 : sp + 1;
}

/** Encode one netstring; the length counts UTF-8 bytes, not characters. */
export function encodeNetstring(payload: string): string {
  return `${Buffer.byteLength(payload)}:${payload},`;
}
