// systemd socket activation (sd_listen_fds(3)): LISTEN_PID is ours, LISTEN_FDS descriptors
// from fd 3 on, named by LISTEN_FDNAMES.
//   Accept=no   listening sockets: one process serves every client, many at once, with
//               -U/-T (after -T idle seconds it exits, and systemd activates a new one at
//               the next client; it keeps the listening socket, so nothing is lost).
//   Accept=yes  one connected socket per process (fd 3, named "connection" by systemd):
//               serve it and exit. With StandardInput=socket (or systemd-socket-activate
//               --inetd) there are no LISTEN_* variables and the stdio model runs instead.
// A socket named `policy` (FileDescriptorName=policy) speaks Postfix's policy delegation
// protocol, `socketmap` socketmap; any other name what the command line says (--policy).
// systemd-socket-activate --accept does not set LISTEN_FDNAMES, so a descriptor is classed
// by probing it (socket-probe.ts) when its name does not say.
import net from 'node:net';
import { EX_OK, EX_OSERR } from './exit-codes';
import type { LifecycleLimits } from './lifecycle';
import type { ListenSpec } from '../listen-spec';
import { runSingle } from './listener';
import { dropPrivileges } from './privileges';
import { peerOf } from './peer';
import type { Service } from './service';
import type { ProcessShell } from './shell';
import { probeFd, type FdKind } from './socket-probe';
import { startLine } from './start-line';
import { serveOneConnection } from './stdio';

const SD_LISTEN_FDS_START = 3;

export interface ActivatedFd {
  readonly fd: number;
  readonly name: string;
  readonly kind: FdKind;
}

/** Read and unset the LISTEN_* variables (children we spawn must not see them). */
export function activatedFds(env: NodeJS.ProcessEnv = process.env): ActivatedFd[] {
  const n = Number(env.LISTEN_FDS ?? '0');
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  const out: ActivatedFd[] = [];
  for (let i = 0; i < (Number.isInteger(n) && n > 0 ? n : 0); i++) {
    const fd = SD_LISTEN_FDS_START + i;
    const name = names[i] ?? '';
    const probed = probeFd(fd);
    // systemd's own word wins; the probe decides where it is silent.
    const kind: FdKind = name === 'connection' && probed !== 'not-socket' ? 'connected' : probed;
    out.push({ fd, name, kind });
  }
  return out;
}

/** Accept=yes: the one connection on fd 3. */
async function serveConnection(service: Service, fd: number, shell: ProcessShell): Promise<void> {
  // Normally started as User= already; as root with smmapd_user set, switch before reading the client.
  dropPrivileges(service.cfg, service.log, false);
  const sock = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
  sock.setNoDelay(true);
  sock.on('error', () => undefined);
  await serveOneConnection(service, shell, sock, sock, peerOf(sock));
  sock.destroy();
  shell.exit(EX_OK);
}

export async function runSystemd(makeService: () => Service, limits: LifecycleLimits, shell: ProcessShell): Promise<void> {
  const fds = activatedFds();
  const service = makeService();
  const log = service.log;
  if (fds.length === 0) {
    shell.fatal('LISTEN_FDS names no descriptor: nothing to serve', EX_OSERR);
  }
  const conn = fds.find((f) => f.kind === 'connected');
  if (conn !== undefined) {
    log.info(startLine(service.cfg, 'systemd', [])); // a process per connection: not a notice each time
    return serveConnection(service, conn.fd, shell);
  }

  const specs: ListenSpec[] = [];
  for (const f of fds) {
    if (f.kind === 'not-socket') {
      log.warning(`fd ${f.fd} from systemd is not a socket: ignored`);
      continue;
    }
    if (f.kind === 'unknown') log.warning(`fd ${f.fd}: cannot tell whether it listens; taking it as a listening socket`);
    // FileDescriptorName=policy: Postfix's policy service; any other name: the default (socketmap, or --policy).
    specs.push({ kind: 'fd', fd: f.fd, name: f.name, proto: f.name === 'policy' ? 'policy' : f.name === 'socketmap' ? 'socketmap' : service.defaultProtocol });
  }
  if (specs.length === 0) {
    shell.fatal('no usable socket from systemd', EX_OSERR);
  }
  log.notice(startLine(service.cfg, 'systemd', specs));
  return runSingle(specs, service, limits, shell);
}
