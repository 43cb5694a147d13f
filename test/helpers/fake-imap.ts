// A scripted IMAP server, just enough for the live store's admin session (LOGIN, LIST "" "",
// GETQUOTAROOT, GETQUOTA, GETACL, LOGOUT), that can be told to hang or to go away. It notes
// every connection and whether a client ever sent a command before the previous one was answered.
import net from 'node:net';

export interface FakeMailbox {
  readonly acl: ReadonlyArray<readonly [string, string]>;
  /** `root (STORAGE used limit ...)` text for QUOTAROOT/QUOTA, or none. */
  readonly quota?: { readonly root: string; readonly resources: string };
  /** GETQUOTAROOT names `quota.root` then fails with this text (Cyrus: a quota record gone or unreadable). */
  readonly quotaError?: string;
}

export class FakeImap {
  readonly mailboxes = new Map<string, FakeMailbox>();
  readonly domainRoots = new Map<string, string>();
  separator = '.';
  password = 'secret';
  /** When true, commands are read and never answered (a wedged server). */
  hang = false;
  connections = 0;
  overlaps = 0;
  commands = 0;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  async start(port = 0): Promise<void> {
    this.server = net.createServer((s) => this.serve(s));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Close the listener and every connection: clients get refused/reset. */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = null;
  }

  private serve(s: net.Socket): void {
    this.connections++;
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
    s.write('* OK fake IMAP ready\r\n');
    let buf = '';
    let pending = 0;
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (pending > 0) this.overlaps++;
        pending++;
        this.commands++;
        if (this.hang) continue;
        const reply = this.answer(line);
        pending--;
        s.write(reply);
        if (/^\S+ LOGOUT/i.test(line)) s.end();
      }
    });
  }

  /** Arguments: atoms or "quoted strings". */
  private static args(rest: string): string[] {
    const out: string[] = [];
    const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
    for (let m = re.exec(rest); m; m = re.exec(rest)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
    return out;
  }

  private answer(line: string): string {
    const [tag, cmdRaw, ...rest] = line.split(' ');
    const cmd = (cmdRaw ?? '').toUpperCase();
    const args = FakeImap.args(rest.join(' '));
    const q = (x: string): string => `"${x.replace(/(["\\])/g, '\\$1')}"`;
    const ok = `${tag} OK done\r\n`;
    switch (cmd) {
      case 'CAPABILITY':
        return `* CAPABILITY IMAP4rev1 QUOTA ACL NAMESPACE\r\n${ok}`;
      case 'LOGIN':
        return args[1] === this.password ? ok : `${tag} NO Login failed\r\n`;
      case 'LIST':
        if (args[1] === '') return `* LIST (\\Noselect) ${q(this.separator)} ""\r\n${ok}`;
        return [...this.mailboxes.keys()].map((n) => `* LIST (\\HasNoChildren) ${q(this.separator)} ${q(n)}\r\n`).join('') +
          `* LIST (\\Noselect \\HasChildren) ${q(this.separator)} "user"\r\n${ok}`;
      case 'GETQUOTAROOT': {
        const m = this.mailboxes.get(args[0]!);
        if (!m) return `${tag} NO Mailbox does not exist\r\n`;
        if (m.quotaError !== undefined) return `* QUOTAROOT ${q(args[0]!)} ${q(m.quota?.root ?? args[0]!)}\r\n${tag} NO ${m.quotaError}\r\n`;
        if (!m.quota) return `* QUOTAROOT ${q(args[0]!)}\r\n${ok}`;
        return `* QUOTAROOT ${q(args[0]!)} ${q(m.quota.root)}\r\n* QUOTA ${q(m.quota.root)} (${m.quota.resources})\r\n${ok}`;
      }
      case 'GETQUOTA': {
        const r = this.domainRoots.get(args[0]!);
        return r === undefined ? `${tag} NO Quota root does not exist\r\n` : `* QUOTA ${q(args[0]!)} (${r})\r\n${ok}`;
      }
      case 'GETACL': {
        const m = this.mailboxes.get(args[0]!);
        if (!m) return `${tag} NO Mailbox does not exist\r\n`;
        return `* ACL ${q(args[0]!)}${m.acl.map(([id, r]) => ` ${q(id)} ${r}`).join('')}\r\n${ok}`;
      }
      case 'LOGOUT':
        return `* BYE bye\r\n${ok}`;
      default:
        return `${tag} BAD unknown command\r\n`;
    }
  }
}
