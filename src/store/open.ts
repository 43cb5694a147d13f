// Choose the store driver from the configuration. The IMAP driver is loaded only when asked
// for, so the SQLite path never loads imapflow.
import type { Config } from '../config';
import { SqliteStore } from './sqlite';
import type { MailboxStore } from './store';

type Log = (msg: string) => void;

/** The export src/store/imap.ts provides. */
interface ImapModule {
  createImapStore(cfg: Config, denyStore: MailboxStore, log?: Log): MailboxStore;
}

/** The read-only SQLite driver on cfg.store, with the configured busy timeout. */
export function openSqliteStore(cfg: Config, log?: Log): SqliteStore {
  return new SqliteStore(cfg.store, { busyTimeoutMs: cfg.storeBusyTimeoutMs, ...(log ? { log } : {}) });
}

export function openStore(cfg: Config, log?: Log): MailboxStore {
  switch (cfg.backend) {
    case 'sqlite':
      return openSqliteStore(cfg, log);
    case 'imap': {
      // The deny list stays local with the IMAP backend: it lives in the SQLite store.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const imap = require('./imap') as ImapModule;
      return imap.createImapStore(cfg, openSqliteStore(cfg, log), log);
    }
  }
}
