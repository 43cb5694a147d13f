// Reading a peer's replies line by line as they arrive, for the text protocols the tests
// drive (SMTP to Postfix and Sendmail, policy delegation to smmapd --policy).
import type { Readable } from 'node:stream';

export interface LineReader {
  /** The next line without its CRLF or LF; null once the peer has closed and nothing is left. */
  next(): Promise<string | null>;
  /** The peer has closed (or the stream failed). */
  readonly closed: boolean;
}

export function lineReader(input: Readable, encoding: BufferEncoding = 'latin1'): LineReader {
  let buf = '';
  const lines: string[] = [];
  let closed = false;
  let wake: (() => void) | null = null;
  input.on('data', (d: Buffer) => {
    buf += d.toString(encoding);
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i).replace(/\r$/, ''));
      buf = buf.slice(i + 1);
    }
    wake?.();
  });
  const done = (): void => {
    closed = true;
    wake?.();
  };
  input.on('end', done);
  input.on('close', done);
  input.on('error', done);
  return {
    get closed() {
      return closed;
    },
    async next() {
      while (lines.length === 0) {
        if (closed) return null;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
      return lines.shift()!;
    },
  };
}
