// The store family, as Postfix's dict_open() table: every driver by its type name, each
// required only when a configuration names it (the stdio model pays for what it loads, and
// a directory driver must never slow the Cyrus path). A new driver is one file and one line.
import type { LookupTable, MailboxStore, StoreLog } from '../core/contract';
import type { Config } from '../config';
// The default store is always needed where any is: loaded eagerly (vitest runs the sources,
// where a plain require() of a .ts file would not resolve).
import * as sqlite from './sqlite';

export type Log = StoreLog;

/** What a mailbox store driver module exports. */
export interface StoreDriver {
  openStore(cfg: Config, log: Log): MailboxStore;
}

/** What a lookup table driver module exports: `TYPE:FILE` from `smmapd_map_NAME`. */
export interface TableDriver {
  openTable(file: string, cfg: Config, log: Log): LookupTable;
}

const STORES: Record<Config['backend'], () => StoreDriver> = {
  sqlite: () => sqlite,
  imap: () => require('./imap') as StoreDriver,
};

const TABLES: Record<string, () => TableDriver> = {
  pgsql: () => require('../table/pgsql') as TableDriver,
  mysql: () => require('../table/mysql') as TableDriver,
  sqlite: () => require('../table/sqlite') as TableDriver,
  ldap: () => require('../table/ldap') as TableDriver,
};

export function openStore(cfg: Config, log: Log): MailboxStore {
  return STORES[cfg.backend]().openStore(cfg, log);
}

export function tableTypes(): string[] {
  return Object.keys(TABLES);
}

/** Open `TYPE:FILE`; throws Error naming the type when no driver has it. */
export function openTable(type: string, file: string, cfg: Config, log: Log): LookupTable {
  const driver = TABLES[type];
  if (driver === undefined) throw new Error(`unknown table type "${type}" (known: ${tableTypes().join(', ')})`);
  return driver().openTable(file, cfg, log);
}

/** The opener for `type:table` patterns in a table's `domain` list: any table type smmapd has. */
export function nestedOpener(cfg: Config, log: Log): (type: string, file: string) => LookupTable {
  return (type, file) => openTable(type, file, cfg, log);
}
