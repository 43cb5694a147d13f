// The first line a daemon logs: what runs, from which file, how, where, on what, as whom, so
// that an operator reading the log (or a bug report) needs nothing else to know the setup.
import { userInfo } from 'node:os';
import type { Config } from '../config';
import type { ProcessModel } from '../log';
import { VERSION } from '../version';
import { describeSpec, type ListenSpec, type Protocol } from '../listen-spec';

function whoAmI(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** e.g. `smmapd 0.1.0 starting: config /etc/smmapd.conf; model listener, 2 workers; socketmap inet:127.0.0.1:12345; policy ...; metrics ...; store sqlite /var/lib/smmapd/smmapd.db; maps alias (pgsql:/etc/alias.cf); user smmapd` */
export function startLine(cfg: Config, model: ProcessModel, specs: readonly ListenSpec[]): string {
  const parts = [`config ${cfg.path === '' ? '(built-in defaults)' : cfg.path}`];
  parts.push(model === 'listener' ? `model listener, ${cfg.workers > 1 ? `${cfg.workers} workers` : 'one process'}` : `model ${model}`);
  for (const proto of ['socketmap', 'policy'] as Protocol[]) {
    const of = specs.filter((s) => s.proto === proto);
    if (of.length > 0) parts.push(`${proto} ${of.map(describeSpec).join(' ')}`);
  }
  if (cfg.metricsListen !== '') parts.push(`metrics ${cfg.metricsListen}`);
  parts.push(cfg.backend === 'sqlite' ? `store sqlite ${cfg.store}` : `store imap ${cfg.imap.server}`);
  parts.push(cfg.maps.length === 0 ? 'maps none' : `maps ${cfg.maps.map((m) => `${m.name} (${m.type}:${m.file})`).join(', ')}`);
  const me = whoAmI();
  parts.push(cfg.runUser !== '' && process.getuid?.() === 0 ? `user ${cfg.runUser}${cfg.runGroup !== '' ? `:${cfg.runGroup}` : ''} (started as ${me})` : `user ${me}`);
  return `smmapd ${VERSION} starting: ${parts.join('; ')}`;
}
