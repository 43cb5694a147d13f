// Cyrus's own dumps, parsed into what a store holds (internal names, ACL text, quota roots,
// deny entries). Pure text in, values out: `smmapctl import-cyrus` reads the files and writes
// the result through the store's write contract.
//
//   ctl_mboxlist -d     JSON (Cyrus 3.x): {"<internal name>": {"mbtype": "e", "acl": {id: rights}, ...}}
//                       Deleted (d), intermediate (i) and reserved (z) entries are not mailboxes.
//   quota [-J]          the text report (STORAGE in KiB, rounded down: usage becomes KiB × 1024,
//                       behaviour §3) or, better, its JSON form (`quota -J`, exact bytes). Roots are
//                       named as an admin sees them (the configured separator, `@domain`).
//   cyr_deny -l         `%-30s %-20s %s` lines under a header (the same in 3.6 and 3.12).
import { formatAcl } from '../core/acl';
import { MSG_DENIED_DEFAULT } from '../core/reply';
import { fromServerName, type ServerNaming } from './imap-names';
import type { DenyEntry, QuotaState, Snapshot } from './store';

/** A dump that cannot be read as what it claims to be. */
export class ImportError extends Error {}

type Mailbox = Snapshot['mailboxes'][number];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Entries Cyrus's mboxlist_lookup does not count as mailboxes. */
const NOT_A_MAILBOX = /[diz]/;

/** `ctl_mboxlist -d` (JSON, Cyrus 3.x) → mailboxes with their ACLs. */
export function parseMboxlist(text: string): Mailbox[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ImportError(`mailbox list: not the JSON that ctl_mboxlist -d writes (Cyrus 3.x): ${(e as Error).message}`);
  }
  if (!isRecord(doc)) throw new ImportError('mailbox list: want a JSON object of mailboxes');
  const out: Mailbox[] = [];
  for (const [key, entry] of Object.entries(doc)) {
    if (!isRecord(entry)) throw new ImportError(`mailbox list: ${key}: want an object`);
    const name = typeof entry.name === 'string' ? entry.name : key;
    const mbtype = typeof entry.mbtype === 'string' ? entry.mbtype : '';
    if (NOT_A_MAILBOX.test(mbtype)) continue;
    const acl = entry.acl ?? {};
    if (!isRecord(acl)) throw new ImportError(`mailbox list: ${name}: acl: want an object`);
    const pairs = Object.entries(acl).map(([id, rights]): [string, string] => {
      if (typeof rights !== 'string') throw new ImportError(`mailbox list: ${name}: acl ${id}: want a string`);
      return [id, rights];
    });
    out.push({ name, acl: formatAcl(pairs) });
  }
  return out;
}

interface RootAcc {
  storageLimitKiB: number | null;
  messageLimit: number | null;
  storageUsed: number;
  messageUsed: number;
}

export interface QuotaImport {
  readonly quotas: QuotaState[];
  /** Roots we could not use, with why. */
  readonly skipped: string[];
}

function newRoot(): RootAcc {
  return { storageLimitKiB: null, messageLimit: null, storageUsed: 0, messageUsed: 0 };
}

function count(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new ImportError(`quota report: ${what}: want a whole number`);
  return Math.max(0, v);
}

// Cyrus 3.6 prints a domain's own root as `(null)` in the text report and leaves it out of the
// JSON one: its name cannot be recovered from either.
const NULL_ROOT = '(null)';
const DOMAIN_ROOT_SKIPPED = `${NULL_ROOT}: a domain's own quota root (Cyrus's quota tool cannot name it): set it with smmapctl quota set @DOMAIN`;

/** `quota -J`: {"<root>": {"STORAGE": {"used": BYTES, "limit": BYTES}, "MESSAGE": {...}}}. */
function parseQuotaJson(doc: unknown, naming: ServerNaming): QuotaImport {
  if (!isRecord(doc)) throw new ImportError('quota report: want a JSON object of quota roots');
  const quotas: QuotaState[] = [];
  for (const [root, res] of Object.entries(doc)) {
    if (!isRecord(res)) throw new ImportError(`quota report: ${root}: want an object`);
    const acc = newRoot();
    const storage = res.STORAGE;
    const message = res.MESSAGE;
    if (isRecord(storage)) {
      acc.storageUsed = count(`${root} STORAGE used`, storage.used ?? 0);
      // The JSON limit is in bytes (KiB × 1024); Cyrus omits a limit of 0 along with none.
      if (storage.limit !== undefined) acc.storageLimitKiB = Math.floor(count(`${root} STORAGE limit`, storage.limit) / 1024);
    }
    if (isRecord(message)) {
      acc.messageUsed = count(`${root} MESSAGE used`, message.used ?? 0);
      if (message.limit !== undefined) acc.messageLimit = count(`${root} MESSAGE limit`, message.limit);
    }
    quotas.push({ root: fromServerName(root, naming), ...acc });
  }
  return { quotas, skipped: [] };
}

// One line per root and resource: `LIMIT PCT USED RES ROOT` (a limit), `0 USED RES ROOT` (a
// limit of 0: no percentage), or `USED RES ROOT` (no limit). The root follows one space.
const QUOTA_LINE = /^\s*(-?\d+)(?:\s+(-?\d+))?(?:\s+(-?\d+))?\s+([A-Z][A-Z0-9-]*) (.*)$/;

function parseQuotaText(text: string, naming: ServerNaming): QuotaImport {
  const roots = new Map<string, RootAcc>();
  const skipped = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || /^\s*Quota\s+% Used\s+Used\s+Resource\s+Root\s*$/.test(line)) return;
    const m = QUOTA_LINE.exec(line);
    if (!m) throw new ImportError(`quota report line ${i + 1}: not a quota line: ${line}`);
    const nums = [m[1], m[2], m[3]].filter((x): x is string => x !== undefined).map(Number);
    const used = Math.max(0, nums[nums.length - 1]!);
    const limit = nums.length === 1 ? null : nums[0]!; // 3 numbers: limit, %, used; 2: limit 0, used
    const [resource, root] = [m[4]!, m[5]!];
    if (root === NULL_ROOT) {
      skipped.add(DOMAIN_ROOT_SKIPPED);
      return;
    }
    const acc = roots.get(root) ?? newRoot();
    roots.set(root, acc);
    if (resource === 'STORAGE') {
      acc.storageUsed = used * 1024; // KiB, rounded down by Cyrus (behaviour §3)
      acc.storageLimitKiB = limit;
    } else if (resource === 'MESSAGE') {
      acc.messageUsed = used;
      acc.messageLimit = limit;
    }
  });
  const quotas = [...roots].map(([root, acc]) => ({ root: fromServerName(root, naming), ...acc }));
  return { quotas, skipped: [...skipped] };
}

/** The `quota` report, text or JSON (`-J`), → quota roots (internal names). */
export function parseQuotaReport(text: string, naming: ServerNaming): QuotaImport {
  const t = text.trimStart();
  if (t.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(t);
    } catch (e) {
      throw new ImportError(`quota report: bad JSON: ${(e as Error).message}`);
    }
    return parseQuotaJson(doc, naming);
  }
  return parseQuotaText(text, naming);
}

/** `cyr_deny -l` → deny entries. The default message comes back as '' (the same answer). */
export function parseDenyList(text: string): DenyEntry[] {
  const out: DenyEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || /^Username\s+Service\(s\)\s+Message\s*$/.test(line)) return;
    const m = /^(\S+)\s+(\S+)(?: {1,21}(.*))?$/.exec(line);
    if (!m) throw new ImportError(`deny list line ${i + 1}: want "user services message": ${line}`);
    const message = (m[3] ?? '').trim();
    out.push({ userid: m[1]!, services: m[2]!, message: message === MSG_DENIED_DEFAULT ? '' : message });
  });
  return out;
}
