// Socketmap framing (behaviour §1): `<decimal length>:<bytes>,`. A streaming decoder that takes
// whatever chunks the socket delivers (pipelined requests, one request split over many
// writes) and an encoder for replies. Pure: no sockets here.

/** Why a frame was refused: Cyrus's own reasons (imap/smmapd.c; `request too large` is 3.13's). */
export type FrameError =
  | 'missing length'
  | "request size doesn't match length"
  | 'missing terminator'
  | 'missing key'
  | 'request too large';

const COLON = 0x3a;
const COMMA = 0x2c;
const SPACE = 0x20;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * Most length digits read. The value is checked as it grows, so this only bounds leading
 * zeros (Cyrus, Postfix and Sendmail accept them; Cyrus 3.6 takes 25 digits of `0…011`).
 */
export const MAX_LENGTH_DIGITS = 32;

/** Postfix refuses socketmap replies over 100,000 bytes (behaviour §1). */
export const MAX_REPLY = 100_000;

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

  constructor(
    private readonly maxLength: number,
    private readonly onFrame: (frame: Buffer) => void,
    private readonly onError: (reason: FrameError) => void,
  ) {}

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

  /**
   * The peer closed its side. A request cut short answers as Cyrus's read loop does: in the
   * length `missing length`, in the body `request size doesn't match length`, and with the
   * whole body read but no comma `missing terminator` (its getc sees EOF, not ',').
   */
  end(): void {
    if (this.state === State.Failed || this.idle) return;
    if (this.state === State.Length) return this.fail('missing length');
    this.fail(this.state === State.Terminator ? 'missing terminator' : "request size doesn't match length");
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
            // Judged by value as it grows, so a 2 GB length is refused before anything is buffered.
            this.length = this.length * 10 + (c - ZERO);
            if (this.length > this.maxLength || ++this.digits > MAX_LENGTH_DIGITS) return this.fail('request too large');
          } else if (c === COLON && this.digits > 0) {
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
