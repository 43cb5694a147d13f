// The inetd model (inetd, xinetd `wait = no`, systemd Accept=yes with StandardInput=socket,
// tcpserver): the one connection is stdin/stdout; exit when it ends.
import type { Socket } from 'node:net';
import type { Service } from './service';

export async function runStdio(service: Service): Promise<void> {
  const stdin = process.stdin as NodeJS.ReadStream & Partial<Socket>;
  const peer = stdin.remoteAddress !== undefined ? `${stdin.remoteAddress}:${stdin.remotePort}` : '[local]';
  await service.serve(process.stdin, process.stdout, peer).done;
  await service.close();
}
