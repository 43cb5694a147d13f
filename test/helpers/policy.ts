// A Postfix policy delegation client (SMTPD_POLICY_README), for tests and the bench:
// requests as Postfix's smtpd writes them, replies read up to their empty line.
import net from 'node:net';

export type PolicyAttrs = Readonly<Record<string, string | number>>;

/** One request as Postfix sends it: request=smtpd_access_policy first, then the attributes, then an empty line. */
export function policyRequest(attrs: PolicyAttrs): string {
  const all: Record<string, string | number> = { request: 'smtpd_access_policy', protocol_state: 'RCPT', protocol_name: 'ESMTP', client_address: '127.0.0.1', sender: 'tester@client.test', ...attrs };
  return `${Object.entries(all).map(([k, v]) => `${k}=${v}`).join('\n')}\n\n`;
}

/** Replies (`action=...` lines, without the empty line) from a byte stream, and the rest. */
export function parsePolicyReplies(text: string): { replies: string[]; rest: string } {
  const replies: string[] = [];
  let rest = text;
  let i;
  while ((i = rest.indexOf('\n\n')) >= 0) {
    replies.push(rest.slice(0, i));
    rest = rest.slice(i + 2);
  }
  return { replies, rest };
}

/**
 * Send `requests` one at a time on one connection, as smtpd does, and return each reply;
 * when the server closes early, the replies so far and `closed`.
 */
export async function policyQuery(port: number, requests: ReadonlyArray<PolicyAttrs | string>, timeoutMs = 10_000): Promise<{ replies: string[]; closed: boolean }> {
  const sock = net.connect({ host: '127.0.0.1', port });
  const replies: string[] = [];
  let buf = '';
  let closed = false;
  let wake: (() => void) | null = null;
  sock.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    wake?.();
  });
  const done = (): void => {
    closed = true;
    wake?.();
  };
  sock.on('close', done);
  sock.on('error', done);
  const timer = setTimeout(() => sock.destroy(new Error('policy query timed out')), timeoutMs);
  try {
    for (const r of requests) {
      sock.write(typeof r === 'string' ? r : policyRequest(r));
      for (;;) {
        const p = parsePolicyReplies(buf);
        if (p.replies.length > 0) {
          replies.push(...p.replies);
          buf = p.rest;
          break;
        }
        if (closed) return { replies, closed };
        await new Promise<void>((res) => (wake = res));
        wake = null;
      }
    }
    return { replies, closed };
  } finally {
    clearTimeout(timer);
    sock.destroy();
  }
}
