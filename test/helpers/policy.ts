// A Postfix policy delegation client (SMTPD_POLICY_README), for tests and the bench:
// requests as Postfix's smtpd writes them, replies read up to their empty line.
import net from 'node:net';
import { lineReader } from './lines';

export type PolicyAttrs = Readonly<Record<string, string | number>>;

/** One request as Postfix sends it: request=smtpd_access_policy first, then the attributes, then an empty line. */
export function policyRequest(attrs: PolicyAttrs): string {
  const all: Record<string, string | number> = { request: 'smtpd_access_policy', protocol_state: 'RCPT', protocol_name: 'ESMTP', client_address: '127.0.0.1', client_port: 54321, sender: 'tester@client.test', ...attrs };
  return `${Object.entries(all).map(([k, v]) => `${k}=${v}`).join('\n')}\n\n`;
}

/**
 * Send `requests` one at a time on one connection, as smtpd does, and return each reply;
 * when the server closes early, the replies so far and `closed`.
 */
export async function policyQuery(port: number, requests: ReadonlyArray<PolicyAttrs | string>, timeoutMs = 10_000): Promise<{ replies: string[]; closed: boolean }> {
  const sock = net.connect({ host: '127.0.0.1', port });
  const lines = lineReader(sock, 'utf8');
  const replies: string[] = [];
  const timer = setTimeout(() => sock.destroy(new Error('policy query timed out')), timeoutMs);
  try {
    for (const r of requests) {
      sock.write(typeof r === 'string' ? r : policyRequest(r));
      // a reply is its lines up to an empty one
      const reply: string[] = [];
      for (let l = await lines.next(); l !== ''; l = await lines.next()) {
        if (l === null) return { replies, closed: true };
        reply.push(l);
      }
      replies.push(reply.join('\n'));
    }
    return { replies, closed: lines.closed };
  } finally {
    clearTimeout(timer);
    sock.destroy();
  }
}
