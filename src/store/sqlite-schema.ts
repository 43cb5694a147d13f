// The SQLite store's file format, shared by the read-only daemon driver (sqlite.ts) and the
// read-write admin side (sqlite-admin.ts). Names are Cyrus internal mailbox names
// (`example.com!user.fred^smith.sub`, `shared.pub`, a domain root `example.com!`).
import type Database from 'better-sqlite3';
import { StoreError } from './store';

/** `PRAGMA application_id`: 'smmp', so another program's SQLite file is not taken for ours. */
export const APPLICATION_ID = 0x736d6d70;

/**
 * Versioned migrations: step i brings a file from user_version i to i + 1. Append only;
 * never edit a step that has shipped. Every table is keyed by the lookup name, so WITHOUT
 * ROWID keeps each lookup one b-tree descent with the row inline.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: mailboxes, quota roots, the user deny list.
  `CREATE TABLE mailboxes (
     name TEXT NOT NULL PRIMARY KEY,
     acl  TEXT NOT NULL DEFAULT ''
   ) WITHOUT ROWID;
   CREATE TABLE quota_roots (
     root              TEXT NOT NULL PRIMARY KEY,
     storage_limit_kib INTEGER CHECK (storage_limit_kib IS NULL OR storage_limit_kib >= 0),
     message_limit     INTEGER CHECK (message_limit IS NULL OR message_limit >= 0),
     storage_used      INTEGER NOT NULL DEFAULT 0 CHECK (storage_used >= 0),
     message_used      INTEGER NOT NULL DEFAULT 0 CHECK (message_used >= 0)
   ) WITHOUT ROWID;
   CREATE TABLE deny (
     userid   TEXT NOT NULL PRIMARY KEY,
     services TEXT NOT NULL DEFAULT '*',
     message  TEXT NOT NULL DEFAULT ''
   ) WITHOUT ROWID;`,
  // 2: a replicated mailbox the IMAP server could not describe (`smmapctl sync`): the reason,
  // NULL when it is fine. Its lookups answer TEMP instead of a guess.
  `ALTER TABLE mailboxes ADD COLUMN failure TEXT;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * An optional table outside the versioned format: `smmapctl sync` creates it with its first
 * write, and a reader that does not know it is unaffected (the format's tables are unchanged).
 * One row: when the round that last replaced the store began (Unix seconds), from which server.
 */
export const SYNC_STATE_DDL = `CREATE TABLE IF NOT EXISTS sync_state (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  synced_at REAL NOT NULL,
  server    TEXT NOT NULL DEFAULT ''
)`;

/** The oldest format the read-only daemon still reads (a missing `failure` column reads as NULL). */
export const MIN_READ_VERSION = 1;

interface SqliteErrorLike {
  code: string;
  message: string;
}

export function sqliteCode(e: unknown): string {
  const code = (e as Partial<SqliteErrorLike> | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** SQLITE_BUSY / SQLITE_LOCKED (and their extended codes): another connection holds a lock. */
export function isLocked(e: unknown): boolean {
  const c = sqliteCode(e);
  return c.startsWith('SQLITE_BUSY') || c.startsWith('SQLITE_LOCKED');
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Check that an open connection holds an smmapd store of the version we speak. Returns the
 * file's version (0 for an empty SQLite file); throws StoreError for a foreign or newer file.
 */
export function checkFormat(db: Database.Database, path: string): number {
  const version = db.pragma('user_version', { simple: true }) as number;
  const appId = db.pragma('application_id', { simple: true }) as number;
  if (version === 0 && appId === 0) {
    // An empty file is a fresh store only if it holds nothing else.
    const tables = db.prepare(`SELECT count(*) FROM sqlite_schema`).pluck().get() as number;
    if (tables !== 0) throw new StoreError(`${path}: not an smmapd store (a SQLite file of another program)`);
    return 0;
  }
  if (appId !== APPLICATION_ID) throw new StoreError(`${path}: not an smmapd store (application_id ${appId})`);
  if (version > SCHEMA_VERSION) {
    throw new StoreError(`${path}: store format ${version} is newer than this smmapd knows (${SCHEMA_VERSION}): upgrade smmapd`);
  }
  return version;
}
