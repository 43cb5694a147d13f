// The mailbox store family, as Postfix's dict_open() table: every store driver by its
// backend name, required only when a configuration names it (the stdio model pays for what
// it loads). Lookup tables have a registry of their own (table/registry.ts).
import type { MailboxStore, StoreLog } from '../core/contract';
import type { Config } from '../config';
// The default store is always needed where any is: loaded eagerly (vitest runs the sources,
// where a plain require() of a .ts file would not resolve).
import * as sqlite from './sqlite';

export type Log = StoreLog;

/** What a mailbox store driver module exports. */
export interface StoreDriver {
  openStore(cfg: Config, log: Log): MailboxStore;
}

const STORES: Record<Config['backend'], () => StoreDriver> = {
  sqlite: () => sqlite,
  imap: () => require('./imap') as StoreDriver,
};

export function openStore(cfg: Config, log: Log): MailboxStore {
  return STORES[cfg.backend]().openStore(cfg, log);
}
