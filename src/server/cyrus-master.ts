// Cyrus master(8) service protocol. STUB until the process-model work lands.
import type { LifecycleLimits } from './lifecycle';
import type { Service } from './service';
export async function runCyrusMaster(service: Service, limits: LifecycleLimits): Promise<void> {
  throw new Error(`Cyrus master model not implemented yet (${service.cfg.path} ${limits.uses})`);
}
