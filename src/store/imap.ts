// The live IMAP store (`smmapd_backend: imap`): every lookup asks the IMAP server, as its admin
// (imap-lookup.ts: existence and quota by GETQUOTAROOT, the ACL by GETACL); against a Cyrus
// Murder frontend, backend by backend (imap-murder.ts). The deny list lives in the local store.
import { existsSync } from 'node:fs';
import type { Config } from '../config';
import { MurderLookups } from './imap-murder';
import { ImapPool } from './imap-pool';
import { openStore as openSqliteStore } from './sqlite';
import type { DenyEntry, MailboxState, MailboxStore } from './store';
import type { StoreLog } from '../core/contract';

class ImapStore implements MailboxStore {
  private readonly pool: ImapPool;
  private readonly murder: MurderLookups;

  constructor(private readonly cfg: Config, private readonly denyStore: MailboxStore, log: StoreLog) {
    this.pool = new ImapPool({ imap: cfg.imap, size: cfg.imap.poolSize, timeoutMs: cfg.imap.timeoutMs, log });
    this.murder = new MurderLookups(this.pool, cfg);
  }

  denyEntry(userid: string): DenyEntry | null | Promise<DenyEntry | null> {
    // With the IMAP backend the local store holds only the deny list, and a site without one
    // need not create it: no file, no entries. A file that exists but fails is still TEMP.
    if (!existsSync(this.cfg.store)) return null;
    return this.denyStore.denyEntry(userid);
  }

  mailbox(name: string, withAcl = true): Promise<MailboxState | null> {
    return this.murder.mailbox(name, withAcl);
  }

  async close(): Promise<void> {
    await this.pool.close();
    await this.denyStore.close();
  }
}

/** The live IMAP store. Lookups throw StoreError (→ TEMP) when the server cannot answer in time. */
export function createImapStore(cfg: Config, denyStore: MailboxStore, log: StoreLog = () => undefined): MailboxStore {
  return new ImapStore(cfg, denyStore, log);
}

/** The registry's entry point. The deny list stays local with the IMAP backend: it lives in the SQLite store. */
export function openStore(cfg: Config, log: StoreLog): MailboxStore {
  return createImapStore(cfg, openSqliteStore(cfg, log), log);
}
