// systemd socket activation. STUB until the process-model work lands.
import type { LifecycleLimits } from './lifecycle';
import type { Service } from './service';
export async function runSystemd(service: Service, limits: LifecycleLimits): Promise<void> {
  throw new Error(`systemd model not implemented yet (${service.cfg.path} ${limits.uses})`);
}
