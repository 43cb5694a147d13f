// The inetd model (inetd, xinetd `wait = no`, systemd Accept=yes with StandardInput=socket,
// tcpserver): the one connection is stdin/stdout; exit when it ends. Under inetd and xinetd
// stderr is the same socket, which is why the log never goes there (src/log.ts). How a
// process lives for one connection (serveOneConnection) is shared with systemd Accept=yes.
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { EX_OK } from './exit-codes';
import { LOCAL_PEER, peerOf, type Peer } from './peer';
import { reloadService, type Service } from './service';
import type { ProcessShell } from './shell';

/** The client, as the socket on stdin shows it, or as tcpserver/xinetd tell it. */
function stdinPeer(stdin: NodeJS.ReadStream & Partial<Socket>): Peer {
  if (stdin.remoteAddress !== undefined) return peerOf(stdin);
  const env = process.env;
  if (env.TCPREMOTEIP !== undefined) return env.TCPREMOTEPORT ? { address: env.TCPREMOTEIP, port: Number(env.TCPREMOTEPORT) } : { address: env.TCPREMOTEIP };
  if (env.REMOTE_HOST !== undefined) return { address: env.REMOTE_HOST };
  return LOCAL_PEER;
}

/**
 * A process that serves one connection (here, and systemd's Accept=yes): resolves when it is
 * over. Stopped by the supervisor: answer what has arrived, then go (within the drain bound).
 * SIGHUP: reload, keep serving.
 */
export async function serveOneConnection(service: Service, shell: ProcessShell, input: Readable, output: Writable, peer: Peer): Promise<void> {
  shell.useService(service);
  const session = service.serve(input, output, peer);
  shell.control({
    stop: (sig) => shell.drain(sig, () => undefined, service.cfg.shutdownTimeoutMs, false),
    reload: () => reloadService(service),
  });
  await session.done;
}

export async function runStdio(service: Service, shell: ProcessShell): Promise<void> {
  await serveOneConnection(service, shell, process.stdin, process.stdout, stdinPeer(process.stdin));
  shell.exit(EX_OK);
}
