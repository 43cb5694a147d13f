// Every smmapctl command, in the order --help lists them.
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { makePrivateDirectory } from '../store/file-access';
import { runBatch } from './batch';
import { denyCommands } from './deny';
import { explainCommand } from './explain';
import { importCyrusCommands } from './import-cyrus';
import { mailboxCommands } from './mailbox';
import { checkMapCommand } from './maps';
import { queryCommand } from './query';
import { quotaCommands } from './quota';
import { storeOwner, UsageError } from './context';
import type { CommandSpec } from './spec';
import { syncCommands } from './sync';

const initCommand: CommandSpec = {
  words: ['init'],
  args: [],
  summary: 'create an empty store (and its directory), or bring an older one to the current format (idempotent)',
  batch: false,
  run(ctx) {
    // The one command that creates the store's directory (configdirectory by default): the
    // others never do, so a typo in smmapd_store is an error rather than a new tree.
    makePrivateDirectory(dirname(ctx.cfg.store), storeOwner(ctx.cfg));
    ctx.store(true);
  },
};

const batchCommand: CommandSpec = {
  words: ['batch'],
  args: [{ name: 'FILE', optional: true }],
  summary: 'run mailbox/acl/quota/deny commands, one per line, from FILE or stdin, all or nothing',
  details:
    'Lines are split like a shell does (single and double quotes, backslash); blank lines and\n' +
    '# comments are skipped. Everything runs in one transaction: an error names its line\n' +
    '(batch:17: ...) and nothing is written.',
  batch: false,
  run(ctx, [file]) {
    let text: string;
    try {
      text = readFileSync(file === undefined || file === '-' ? 0 : file, 'utf8');
    } catch (e) {
      // smmapctl(8): a file that cannot be read is a usage error (64), as in import-cyrus.
      throw new UsageError(`cannot read ${file ?? 'standard input'}: ${(e as Error).message}`);
    }
    runBatch(ctx, COMMANDS, text);
  },
};

export const COMMANDS: readonly CommandSpec[] = [
  ...mailboxCommands,
  ...quotaCommands,
  ...denyCommands,
  queryCommand,
  checkMapCommand,
  explainCommand,
  ...syncCommands,
  ...importCyrusCommands,
  batchCommand,
  initCommand,
];

/** Descriptions of the command groups (the first word of two-word commands). */
export const GROUPS: Readonly<Record<string, string>> = {
  mailbox: 'create, delete and list mailboxes',
  acl: 'set, delete and list mailbox ACL entries',
  quota: 'set, record, delete and list quota roots',
  deny: 'add, remove and list user deny entries',
};
