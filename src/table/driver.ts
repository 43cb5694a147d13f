// What a lookup table driver is: a module in src/table, listed in registry.ts, that opens
// `TYPE:FILE`. It is handed what it needs, the settings and the opener of the tables its
// `domain` list names, so that no driver imports the registry or config.ts (no circle).
import type { LookupTable, StoreLog } from '../core/contract';
import type { OpenNested } from './expand';

export type { OpenNested };

/** What of the daemon's configuration a table reads (the daemon passes its whole Config). */
export interface TableSettings {
  /** smmapd_maps_timeout: a lookup's deadline, ms. */
  readonly mapTimeoutMs: number;
  /** smmapd_maps_pool_size: connections per host. */
  readonly mapPoolSize: number;
}

/** What a table driver module exports. `open`: for `type:table` patterns in its `domain` list. */
export interface TableDriver {
  openTable(file: string, cfg: TableSettings, log: StoreLog, open: OpenNested): LookupTable;
}
