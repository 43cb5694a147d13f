// The SMTP dialogue both MTA tests drive: EHLO, MAIL FROM, one RCPT TO per address, QUIT.
// The transport is the caller's: a socket (Postfix smtpd) or a child's stdio (Sendmail -bs).
import type { Readable } from 'node:stream';

/** Lines as they arrive (CRLF or LF); rejects once the peer has closed and nothing is left. */
function lineReader(input: Readable): () => Promise<string> {
  let buf = '';
  const lines: string[] = [];
  let ended = false;
  let wake: (() => void) | null = null;
  input.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i).replace(/\r$/, ''));
      buf = buf.slice(i + 1);
    }
    wake?.();
  });
  const done = (): void => {
    ended = true;
    wake?.();
  };
  input.on('end', done);
  input.on('close', done);
  input.on('error', done);
  return async () => {
    while (lines.length === 0) {
      if (ended) throw new Error('SMTP peer closed');
      await new Promise<void>((r) => (wake = r));
      wake = null;
    }
    return lines.shift()!;
  };
}

/** The reply to each RCPT TO, as the last line of each (possibly multi-line) reply. */
export async function rcptDialogue(input: Readable, write: (line: string) => void, sender: string, addresses: readonly string[]): Promise<string[]> {
  const line = lineReader(input);
  const reply = async (): Promise<string> => {
    for (;;) {
      const l = await line();
      if (l.length < 4 || l[3] !== '-') return l;
    }
  };
  const say = (c: string): Promise<string> => {
    write(`${c}\r\n`);
    return reply();
  };
  const greet = await reply();
  if (!greet.startsWith('220')) throw new Error(`no greeting: ${greet}`);
  await say('EHLO client.test');
  await say(`MAIL FROM:<${sender}>`);
  const out: string[] = [];
  for (const a of addresses) out.push(await say(`RCPT TO:<${a}>`));
  await say('QUIT');
  return out;
}

export interface SmtpSession {
  readonly sender: string;
  /** Declared with MAIL FROM ... SIZE=; absent: no SIZE parameter. */
  readonly size?: number;
  readonly recipients: readonly string[];
  /** Sent after DATA when given (dot-stuffed here), then `.`. */
  readonly body?: string;
}

export interface SmtpReplies {
  readonly mail: string;
  readonly rcpt: string[];
  /** The reply to DATA (354, or a refusal), then the one after the final dot, when a body was given. */
  readonly data: string | null;
  readonly endOfData: string | null;
}

/** A whole SMTP transaction: every reply as the last line of each (possibly multi-line) reply. */
export async function smtpDialogue(input: Readable, write: (line: string) => void, d: SmtpSession): Promise<SmtpReplies> {
  const line = lineReader(input);
  const reply = async (): Promise<string> => {
    for (;;) {
      const l = await line();
      if (l.length < 4 || l[3] !== '-') return l;
    }
  };
  const say = (c: string): Promise<string> => {
    write(`${c}\r\n`);
    return reply();
  };
  const greet = await reply();
  if (!greet.startsWith('220')) throw new Error(`no greeting: ${greet}`);
  await say('EHLO client.test');
  const mail = await say(`MAIL FROM:<${d.sender}>${d.size !== undefined ? ` SIZE=${d.size}` : ''}`);
  const rcpt: string[] = [];
  for (const a of d.recipients) rcpt.push(await say(`RCPT TO:<${a}>`));
  let data: string | null = null;
  let endOfData: string | null = null;
  if (d.body !== undefined) {
    data = await say('DATA');
    if (data.startsWith('354')) {
      const text = d.body.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
      write(`${text}${text.endsWith('\r\n') ? '' : '\r\n'}.\r\n`);
      endOfData = await reply();
    }
  }
  await say('QUIT');
  return { mail, rcpt, data, endOfData };
}
