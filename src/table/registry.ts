// The table family, as Postfix's dict_open() table: every lookup table driver by its type
// name, each required only when a configuration names it (the stdio model pays start-up per
// connection, and a directory driver must never slow the Cyrus path). A new driver is one
// file in src/table (driver.ts says what it exports) and one line in each list below.
// config.ts reads TABLE_TYPES to check `smmapd_map_NAME = TYPE:FILE`: the names stand apart
// from the drivers, so reading them loads none.
import type { LookupTable, StoreLog } from '../core/contract';
import type { TableDriver, TableSettings } from './driver';

/** The table types `smmapd_map_*` (and a `domain` list's `type:table`) may name. */
export const TABLE_TYPES: readonly string[] = ['pgsql', 'mysql', 'sqlite', 'ldap'];

const DRIVERS: Record<string, () => TableDriver> = {
  pgsql: () => require('./pgsql') as TableDriver,
  mysql: () => require('./mysql') as TableDriver,
  sqlite: () => require('./sqlite') as TableDriver,
  ldap: () => require('./ldap') as TableDriver,
};

/** Open `TYPE:FILE`; throws Error naming the type when no driver has it. */
export function openTable(type: string, file: string, cfg: TableSettings, log: StoreLog): LookupTable {
  const driver = TABLE_TYPES.includes(type) ? DRIVERS[type] : undefined;
  if (driver === undefined) throw new Error(`unknown table type "${type}" (known: ${TABLE_TYPES.join(', ')})`);
  // a table's `domain` list may name any table type smmapd has
  return driver().openTable(file, cfg, log, (t, f) => openTable(t, f, cfg, log));
}
