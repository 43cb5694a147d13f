// The inetd model (inetd, xinetd `wait = no`, systemd Accept=yes with StandardInput=socket,
// tcpserver): the one connection is stdin/stdout; exit when it ends. Under inetd and xinetd
// stderr is the same socket, which is why the log never goes there (src/log.ts).
import type { Socket } from 'node:net';
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

export async function runStdio(service: Service, shell: ProcessShell): Promise<void> {
  shell.useService(service);
  const session = service.serve(process.stdin, process.stdout, stdinPeer(process.stdin));
  // Stopped by the supervisor: answer what has arrived, then go (within the drain bound).
  // SIGHUP: reload, keep serving.
  shell.on(['SIGTERM', 'SIGINT'], (sig) => shell.drain(sig, () => undefined, service.cfg.shutdownTimeoutMs, false));
  shell.on(['SIGHUP'], () => reloadService(service));
  await session.done;
  shell.exit(EX_OK);
}
