// The SMTP dialogue both MTA tests drive: EHLO, MAIL FROM, one RCPT TO per address, QUIT.
// The transport is the caller's: a socket (Postfix smtpd) or a child's stdio (Sendmail -bs).
import type { Readable } from 'node:stream';
import { lineReader } from './lines';

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
  const lines = lineReader(input);
  const reply = async (): Promise<string> => {
    for (;;) {
      const l = await lines.next();
      if (l === null) throw new Error('SMTP peer closed');
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

/** The reply to each RCPT TO, as the last line of each (possibly multi-line) reply. */
export async function rcptDialogue(input: Readable, write: (line: string) => void, sender: string, addresses: readonly string[]): Promise<string[]> {
  return (await smtpDialogue(input, write, { sender, recipients: addresses })).rcpt;
}
