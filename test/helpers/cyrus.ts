// A private Cyrus IMAP 3.x (Debian's cyrus-imapd, /usr/lib/cyrus/bin) on loopback, with its own
// smmapd service, as the reference peer of the differential tests. Each instance lives in its own
// temporary directory on free ports; Cyrus refuses to run as root, so it runs as cyrus:mail.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, pidsMatching, sleep } from './base';

export const CYRUS_BIN = '/usr/lib/cyrus/bin';
export const ADMIN = { user: 'cyrus', password: 'secret' } as const;

export interface CyrusOptions {
  readonly unixhierarchysep?: boolean;
  readonly virtdomains?: 'off' | 'userid' | 'on';
  readonly defaultdomain?: string;
  readonly postuser?: string;
  readonly lmtpDowncaseRcpt?: boolean;
  readonly lmtpOverQuotaPermFailure?: boolean;
  /** More imapd.conf lines. */
  readonly extra?: string;
  /** Where the instance's directory goes: default /dev/shm when there is one (Cyrus creates mailboxes ~40× faster on tmpfs), else the temp dir. */
  readonly base?: string;
  /** Serve TLS: STARTTLS on the IMAP port and implicit TLS on `imapsPort`, with a fresh self-signed CA (`caFile`). */
  readonly tls?: boolean;
}

export interface Cyrus {
  readonly dir: string;
  /** Its imapd.conf. */
  readonly conf: string;
  readonly imapPort: number;
  readonly smmapPort: number;
  readonly lmtpPort: number;
  /** Implicit TLS (imaps) port; 0 without `tls`. */
  readonly imapsPort: number;
  /** The CA that signed the server certificate (for 127.0.0.1 and localhost); '' without `tls`. */
  readonly caFile: string;
  readonly options: CyrusOptions;
  /** The hierarchy separator an admin sees. */
  readonly sep: '/' | '.';
  /** Pids of every process of this instance (master and children). */
  pids(): number[];
  /** SIGSTOP every process: the server is wedged (connections accepted, never answered). */
  freeze(): void;
  thaw(): void;
  /** Stop master and children (SIGTERM, then SIGKILL); the directory stays. */
  halt(): Promise<void>;
  /** SIGKILL every process at once (works on stopped ones too) and wait until they are gone. */
  kill(): Promise<void>;
  /** Start the master again on the same ports and data. */
  resume(): Promise<void>;
  /** halt() and remove the directory. */
  stop(): Promise<void>;
  /** Run a Cyrus tool as the cyrus user with -C; returns stdout. */
  tool(name: string, args: readonly string[]): string;
}

/** True when this machine can run the reference peer (root, Debian cyrus-imapd installed). */
export function cyrusAvailable(): boolean {
  return process.getuid?.() === 0 && existsSync(join(CYRUS_BIN, 'master')) && existsSync(join(CYRUS_BIN, 'smmapd'));
}


function yesNo(v: boolean): string {
  return v ? 'yes' : 'no';
}

function imapdConf(dir: string, o: CyrusOptions): string {
  const lines = [
    `configdirectory: ${dir}/conf`,
    `proc_path: ${dir}/run/proc`,
    `mboxname_lockpath: ${dir}/run/lock`,
    'defaultpartition: default',
    `partition-default: ${dir}/spool`,
    'admins: cyrus',
    'allowplaintext: yes',
    'sasl_pwcheck_method: auxprop',
    'sasl_auxprop_plugin: sasldb',
    `sasl_sasldb_path: ${dir}/sasldb2`,
    'sasl_mech_list: PLAIN LOGIN',
    `unixhierarchysep: ${yesNo(o.unixhierarchysep ?? false)}`,
    'altnamespace: no',
    `virtdomains: ${o.virtdomains ?? 'off'}`,
    `lmtp_downcase_rcpt: ${yesNo(o.lmtpDowncaseRcpt ?? true)}`,
    `lmtp_over_quota_perm_failure: ${yesNo(o.lmtpOverQuotaPermFailure ?? false)}`,
    `lmtpsocket: ${dir}/run/socket/lmtp`,
    `idlesocket: ${dir}/run/socket/idle`,
    `notifysocket: ${dir}/run/socket/notify`,
    'statuscache: no',
  ];
  if (o.defaultdomain) lines.push(`defaultdomain: ${o.defaultdomain}`);
  if (o.postuser) lines.push(`postuser: ${o.postuser}`);
  if (o.extra) lines.push(o.extra);
  return lines.join('\n') + '\n';
}

function cyrusConf(conf: string, imap: number, smmap: number, lmtp: number, imaps: number): string {
  const b = CYRUS_BIN;
  const tls = imaps ? `\n  imaps cmd="${b}/imapd -s -C ${conf} -U 30" listen="127.0.0.1:${imaps}" prefork=0 maxchild=10` : '';
  return `START {
  recover cmd="${b}/ctl_cyrusdb -C ${conf} -r"
}
SERVICES {
  imap  cmd="${b}/imapd -C ${conf} -U 30" listen="127.0.0.1:${imap}" prefork=0 maxchild=50
  smmap cmd="${b}/smmapd -C ${conf}" listen="127.0.0.1:${smmap}" prefork=1 maxchild=50
  lmtp  cmd="${b}/lmtpd -C ${conf} -a" listen="127.0.0.1:${lmtp}" prefork=0 maxchild=10${tls}
}
EVENTS {
}
`;
}

function uidOf(name: string, flag: '-u' | '-g'): number {
  return Number(execFileSync('id', [flag, name]).toString().trim());
}

function chownTree(path: string, uid: number, gid: number): void {
  execFileSync('chown', ['-R', `${uid}:${gid}`, path]);
}

function asCyrus(argv: readonly string[]): ReturnType<typeof spawnSync> {
  return spawnSync('setpriv', ['--reuid=cyrus', '--regid=mail', '--init-groups', ...argv], { encoding: 'utf8' });
}

async function waitPort(port: number, up: boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const open = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (open === up) return true;
    await sleep(100);
  }
  return false;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A CA and a server certificate it signs (127.0.0.1, localhost), with openssl. Returns the CA file. */
function makeCertificates(dir: string): string {
  const t = join(dir, 'tls');
  mkdirSync(t, { recursive: true });
  const ssl = (args: string[]): void => void execFileSync('openssl', args, { cwd: t, stdio: 'pipe' });
  ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=smmapd test CA']);
  ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(t, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf']);
  return join(t, 'ca.pem');
}

/** Start a private Cyrus. Throws when it does not come up within 15 s. */
export async function startCyrus(options: CyrusOptions = {}): Promise<Cyrus> {
  const dir = mkdtempSync(join(options.base ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir()), 'smmapd-cyrus-'));
  chmodSync(dir, 0o755);
  const [imapPort, smmapPort, lmtpPort] = [await freePort(), await freePort(), await freePort()];
  for (const d of ['conf', 'spool', 'run/socket', 'run/proc', 'run/lock', 'log']) mkdirSync(join(dir, d), { recursive: true });
  for (const d of ['db', 'proc', 'socket', 'log', 'user', 'quota', 'sieve']) mkdirSync(join(dir, 'conf', d), { recursive: true });
  const conf = join(dir, 'imapd.conf');
  const imapsPort = options.tls ? await freePort() : 0;
  const caFile = options.tls ? makeCertificates(dir) : '';
  const tlsConf = options.tls ? `tls_server_cert: ${dir}/tls/server.pem\ntls_server_key: ${dir}/tls/server.key\n` : '';
  writeFileSync(conf, imapdConf(dir, options) + tlsConf);
  const masterConf = join(dir, 'cyrus.conf');
  writeFileSync(masterConf, cyrusConf(conf, imapPort, smmapPort, lmtpPort, imapsPort));
  const sasldb = join(dir, 'sasldb2');
  execFileSync('saslpasswd2', ['-p', '-c', '-f', sasldb, ADMIN.user], { input: `${ADMIN.password}\n` });
  const uid = uidOf('cyrus', '-u');
  const gid = uidOf('mail', '-g');
  chownTree(dir, uid, gid);
  chownSync(sasldb, uid, gid);
  const pidFile = join(dir, 'run', 'master.pid');

  const pids = (): number[] => pidsMatching(conf);
  const signalAll = (sig: NodeJS.Signals): void => {
    for (const p of pids()) {
      try { process.kill(p, sig); } catch { /* already gone */ }
    }
  };
  const resume = async (): Promise<void> => {
    const r = asCyrus([join(CYRUS_BIN, 'master'), '-C', conf, '-M', masterConf, '-p', pidFile, '-d']);
    if (r.status !== 0) throw new Error(`cyrus master failed: ${String(r.stderr)}`);
    if (!(await waitPort(imapPort, true, 15_000)) || !(await waitPort(smmapPort, true, 15_000))) {
      throw new Error(`cyrus did not listen on ${imapPort}/${smmapPort}`);
    }
  };
  const halt = async (): Promise<void> => {
    signalAll('SIGCONT');
    let master = 0;
    try { master = Number(readFileSync(pidFile, 'utf8').trim()); } catch { /* not running */ }
    if (master > 0 && alive(master)) process.kill(master, 'SIGTERM');
    const end = Date.now() + 5000;
    while (pids().length > 0 && Date.now() < end) await sleep(100);
    signalAll('SIGKILL');
    while (pids().length > 0 && Date.now() < end + 3000) await sleep(50);
    await waitPort(imapPort, false, 3000);
  };
  const kill = async (): Promise<void> => {
    signalAll('SIGKILL');
    const end = Date.now() + 5000;
    while (pids().length > 0 && Date.now() < end) await sleep(50);
  };
  const cyrus: Cyrus = {
    dir, conf, imapPort, smmapPort, lmtpPort, imapsPort, caFile, options,
    sep: options.unixhierarchysep ? '/' : '.',
    pids,
    freeze: () => signalAll('SIGSTOP'),
    thaw: () => signalAll('SIGCONT'),
    halt,
    kill,
    resume,
    stop: async () => {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
    tool: (name, args) => {
      const r = asCyrus([join(CYRUS_BIN, name), '-C', conf, ...args]);
      if (r.status !== 0) throw new Error(`${name} ${args.join(' ')}: exit ${r.status}: ${String(r.stderr)}`);
      return String(r.stdout);
    },
  };
  try {
    await resume();
  } catch (e) {
    await cyrus.stop();
    throw e;
  }
  return cyrus;
}

/** One admin operation, in the admin's view of names (the instance's separator, `@domain`). */
export type AdminOp =
  | { readonly create: string }
  | { readonly setacl: readonly [string, string, string] }
  | { readonly deleteacl: readonly [string, string] }
  | { readonly setquota: readonly [string, string] }
  /** Append a message with a body of this many bytes (the admin gets rights on the folder first). */
  | { readonly append: readonly [string, number] };

const POPULATE_PY = `
import imaplib, json, sys
port, ops = int(sys.argv[1]), json.load(sys.stdin)
M = imaplib.IMAP4('127.0.0.1', port)
M.login(sys.argv[2], sys.argv[3])
def q(s):
    return '"' + s.replace('\\\\', '\\\\\\\\').replace('"', '\\\\"') + '"'
def check(what, r):
    if r[0] != 'OK':
        sys.exit('%s: %r' % (what, r))
for op in ops:
    (k, v), = op.items()
    if k == 'create': check(op, M.create(q(v)))
    elif k == 'setacl': check(op, M.setacl(q(v[0]), q(v[1]), v[2]))
    elif k == 'deleteacl': check(op, M.deleteacl(q(v[0]), q(v[1])))
    elif k == 'setquota': check(op, M.setquota(q(v[0]), v[1]))
    elif k == 'append':
        check(op, M.setacl(q(v[0]), sys.argv[2], 'lrswipkxtecda'))
        check(op, M.append(q(v[0]), None, None, b'From: a@b\\r\\nSubject: x\\r\\n\\r\\n' + b'x' * v[1] + b'\\r\\n'))
M.logout()
`;

/** Run admin operations over IMAP, in order; throws on the first that fails. */
export function populate(cyrus: Pick<Cyrus, 'imapPort'>, ops: readonly AdminOp[]): void {
  const r = spawnSync('python3', ['-c', POPULATE_PY, String(cyrus.imapPort), ADMIN.user, ADMIN.password], {
    input: JSON.stringify(ops), encoding: 'utf8', maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`populate failed: ${r.stderr || r.stdout}`);
}

/** Create many mailboxes quickly (pipelined CREATEs on one connection), for load and timing tests. */
export function createMany(cyrus: Pick<Cyrus, 'imapPort'>, names: readonly string[]): void {
  const py = `
import socket, sys
names = sys.stdin.read().split('\\n')
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
f = s.makefile('rb')
f.readline()
s.sendall(b'L LOGIN %s %s\\r\\n' % (sys.argv[2].encode(), sys.argv[3].encode()))
while not f.readline().startswith(b'L '): pass
batch = 200
for i in range(0, len(names), batch):
    chunk = names[i:i+batch]
    s.sendall(b''.join(b'C%d CREATE "%s"\\r\\n' % (i + j, n.encode()) for j, n in enumerate(chunk)))
    left = len(chunk)
    while left:
        line = f.readline()
        if not line: sys.exit('connection closed')
        if line.startswith(b'C'):
            left -= 1
            if b' OK ' not in line: sys.exit(line.decode())
s.sendall(b'Z LOGOUT\\r\\n')
`;
  const r = spawnSync('python3', ['-c', py, String(cyrus.imapPort), ADMIN.user, ADMIN.password], {
    input: names.join('\n'), encoding: 'utf8', maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`createMany failed: ${r.stderr || r.stdout}`);
}

/**
 * Our configuration for reading this Cyrus: its own imapd.conf (unknown options are ignored,
 * as an admin would point us at it) plus our store and the admin login; `extra` lines last.
 */
export function smmapdConf(cy: Pick<Cyrus, 'conf' | 'imapPort'>, dir: string, name: string, backend: 'imap' | 'sqlite', extra: readonly string[] = []): string {
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, [
    readFileSync(cy.conf, 'utf8'),
    `smmapd_store: ${join(dir, `${name}.db`)}`,
    `smmapd_backend: ${backend}`,
    `smmapd_imap_server: 127.0.0.1:${cy.imapPort}`,
    'smmapd_imap_tls: none',
    `smmapd_imap_user: ${ADMIN.user}`,
    `smmapd_imap_password: ${ADMIN.password}`,
    'smmapd_workers: 1',
    ...extra,
  ].join('\n') + '\n');
  return file;
}
