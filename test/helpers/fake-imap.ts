// A scripted IMAP server, just enough for the live store's admin session (LOGIN, LIST "" "",
// GETQUOTAROOT, GETQUOTA, GETACL, LOGOUT), that can be told to hang or to go away. It notes
// every connection and whether a client ever sent a command before the previous one was answered.
// `murder` makes it a Cyrus Murder frontend: MUPDATE advertised, each mailbox's backend in its
// server annotation (GETMETADATA), and a backend that can be down (GETQUOTAROOT refused as Cyrus
// refuses it) or hung (a GETQUOTAROOT for it wedges that connection, as a proxying imapd does).
import net from 'node:net';

export interface FakeMailbox {
  readonly acl: ReadonlyArray<readonly [string, string]>;
  /** `root (STORAGE used limit ...)` text for QUOTAROOT/QUOTA, or none. */
  readonly quota?: { readonly root: string; readonly resources: string };
  /** GETQUOTAROOT names `quota.root` then fails with this text (Cyrus: a quota record gone or unreadable). */
  readonly quotaError?: string;
  /** The Murder backend holding it (its server annotation). */
  readonly backend?: string;
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
  /** A Murder frontend (see the top). */
  murder = false;
  readonly backendsDown = new Set<string>();
  readonly backendsHung = new Set<string>();
  /** Commands received, by name. */
  readonly byCommand = new Map<string, number>();
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
    let wedged = false;
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (pending > 0) this.overlaps++;
        pending++;
        this.commands++;
        const name = (line.split(' ')[1] ?? '').toUpperCase();
        this.byCommand.set(name, (this.byCommand.get(name) ?? 0) + 1);
        if (this.hang || wedged) continue;
        const reply = this.answer(line);
        if (reply === null) {
          wedged = true;
          continue;
        }
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

  /** The backend `name` needs, when it is down ('down') or hung ('hung'). */
  private backendTrouble(name: string): 'down' | 'hung' | null {
    const b = this.mailboxes.get(name)?.backend;
    if (!this.murder || b === undefined) return null;
    return this.backendsHung.has(b) ? 'hung' : this.backendsDown.has(b) ? 'down' : null;
  }

  /** The reply to one command line; null: this connection answers nothing more (proxying to a hung backend). */
  private answer(line: string): string | null {
    const [tag, cmdRaw, ...rest] = line.split(' ');
    const cmd = (cmdRaw ?? '').toUpperCase();
    const args = FakeImap.args(rest.join(' '));
    const q = (x: string): string => `"${x.replace(/(["\\])/g, '\\$1')}"`;
    const ok = `${tag} OK done\r\n`;
    switch (cmd) {
      case 'CAPABILITY':
        return `* CAPABILITY IMAP4rev1 QUOTA ACL NAMESPACE${this.murder ? ' METADATA MUPDATE=mupdate://127.0.0.1/' : ''}\r\n${ok}`;
      case 'GETMETADATA': {
        if (!this.murder) return `${tag} BAD unknown command\r\n`;
        // `GETMETADATA name entry` or `GETMETADATA (name ...) entry`
        const text = rest.join(' ');
        const names = text.startsWith('(') ? FakeImap.args(text.slice(1, text.indexOf(')'))) : [args[0]!];
        let out = '';
        for (const n of names) {
          const m = this.mailboxes.get(n);
          if (!m) return `${tag} NO Mailbox does not exist\r\n`;
          if (m.backend !== undefined) out += `* METADATA ${q(n)} ("/shared/vendor/cmu/cyrus-imapd/server" ${q(m.backend)})\r\n`;
        }
        return out + ok;
      }
      case 'LOGIN':
        return args[1] === this.password ? ok : `${tag} NO Login failed\r\n`;
      case 'LIST':
        if (args[1] === '') return `* LIST (\\Noselect) ${q(this.separator)} ""\r\n${ok}`;
        return [...this.mailboxes.keys()].map((n) => `* LIST (\\HasNoChildren) ${q(this.separator)} ${q(n)}\r\n`).join('') +
          `* LIST (\\Noselect \\HasChildren) ${q(this.separator)} "user"\r\n${ok}`;
      case 'GETQUOTAROOT': {
        const m = this.mailboxes.get(args[0]!);
        if (!m) return `${tag} NO Mailbox does not exist\r\n`;
        const trouble = this.backendTrouble(args[0]!);
        if (trouble === 'hung') return null;
        if (trouble === 'down') return `${tag} NO Server(s) unavailable to complete operation\r\n`;
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
