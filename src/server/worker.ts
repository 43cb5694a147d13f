// A worker of the listener's primary (primary.ts): accepts on the listening sockets the
// primary shares with every worker, serves, reports each connection to the primary, obeys
// it. The primary owns SIGTERM/SIGINT and the unix socket files.
import { dropPrivileges } from './privileges';
import { kindOf, type PrimaryMsg, type WorkerMsg } from './cluster-messages';
import { EX_TEMPFAIL } from './exit-codes';
import { BindError, closeAll, serveOn } from './listener';
import type { ListenSpec } from '../listen-spec';
import { reloadService, type Service } from './service';
import type { ProcessShell } from './shell';

function send(m: WorkerMsg): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined || !process.connected) return resolve();
    process.send(m, undefined, {}, () => resolve());
  });
}

export async function runWorker(specs: ListenSpec[], service: Service, shell: ProcessShell): Promise<void> {
  shell.useService(service);
  let servers;
  try {
    servers = (await serveOn(specs, service, { opened: () => void send({ smmapd: 'opened' }), closed: () => void send({ smmapd: 'closed' }) }, false)).servers;
  } catch (e) {
    if (!(e instanceof BindError)) throw e;
    // Not a crash: the primary says it once and ends the daemon; restarting would not help.
    await send({ smmapd: 'bind-failed', message: e.message });
    return shell.exit(EX_TEMPFAIL, { why: e.message });
  }
  dropPrivileges(service.cfg, service.log, false);
  const stop = (why: string): void => shell.drain(why, () => closeAll(servers), service.cfg.shutdownTimeoutMs);
  process.on('message', (m: PrimaryMsg) => {
    const kind = kindOf(m);
    if (kind === 'stop-accepting') closeAll(servers);
    else if (kind === 'shutdown') stop('primary asked');
  });
  // The primary owns the signals: SIGTERM/SIGINT to the process group must not kill us mid-reply.
  shell.control({ stop: 'ignore', reload: () => reloadService(service) });
  if (service.cfg.metricsListen !== '') (require('./metrics-http') as typeof import('./metrics-http')).setupMetrics('worker', service.cfg, service.log, service.enableMetrics());
  await send({ smmapd: 'ready' });
}
