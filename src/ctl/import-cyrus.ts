// smmapctl import-cyrus [--mboxlist FILE] [--quota FILE] [--deny FILE]: seed the store from
// Cyrus's own dumps (ctl_mboxlist -d, quota [-J], cyr_deny -l), taken on the Cyrus host as the
// cyrus user and parsed by store/cyrus-dump.ts.
//
// Whatever is given replaces the store's content of that kind in ONE transaction (mailboxes and
// quota roots via replaceSnapshot, the deny list beside it); what is not given stays. FILE `-`
// is standard input.
import { readFileSync } from 'node:fs';
import { separatorOf, type Config } from '../config';
import { parseDenyList, parseMboxlist, parseQuotaReport } from '../store/cyrus-dump';
import type { ServerNaming } from '../store/imap-names';
import type { CtlContext } from './context';
import { UsageError } from './context';
import { stringOpt, type CommandSpec } from './spec';

function readInput(path: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Roots are written as the admin sees them, with this configuration's separator. */
export function adminNaming(cfg: Config): ServerNaming {
  return { separator: separatorOf(cfg), domains: cfg.virtdomains !== 'off', defaultdomain: cfg.defaultdomain };
}

export interface ImportFiles {
  readonly mboxlist?: string;
  readonly quota?: string;
  readonly deny?: string;
}

export interface ImportResult {
  readonly mailboxes: number | null;
  readonly quotaRoots: number | null;
  readonly deny: number | null;
  readonly skipped: readonly string[];
}

/** Parse what is given, then write it in one transaction. */
export function importCyrus(ctx: CtlContext, files: ImportFiles): ImportResult {
  if (files.mboxlist === undefined && files.quota === undefined && files.deny === undefined) {
    throw new UsageError('give at least one of --mboxlist, --quota, --deny');
  }
  if ([files.mboxlist, files.quota, files.deny].filter((f) => f === '-').length > 1) {
    throw new UsageError('only one dump can come from standard input');
  }
  const mailboxes = files.mboxlist === undefined ? null : parseMboxlist(readInput(files.mboxlist));
  const q = files.quota === undefined ? null : parseQuotaReport(readInput(files.quota), adminNaming(ctx.cfg));
  const deny = files.deny === undefined ? null : parseDenyList(readInput(files.deny));
  const store = ctx.store(true);
  store.transaction(() => {
    if (mailboxes !== null || q !== null) {
      store.replaceSnapshot({
        mailboxes: mailboxes ?? store.listMailboxes(),
        quotas: q?.quotas ?? store.listQuotas(),
      });
    }
    if (deny !== null) {
      for (const e of store.listDeny()) store.removeDeny(e.userid);
      for (const e of deny) store.setDeny(e.userid, e.services, e.message);
    }
  });
  return { mailboxes: mailboxes?.length ?? null, quotaRoots: q?.quotas.length ?? null, deny: deny?.length ?? null, skipped: q?.skipped ?? [] };
}

export const importCyrusCommands: readonly CommandSpec[] = [
  {
    words: ['import-cyrus'],
    args: [],
    options: [
      { long: 'mboxlist', value: 'FILE', description: 'output of ctl_mboxlist -d (JSON, Cyrus 3.x); - for stdin' },
      { long: 'quota', value: 'FILE', description: 'output of Cyrus\'s quota report (text, or -J for exact bytes)' },
      { long: 'deny', value: 'FILE', description: 'output of cyr_deny -l' },
    ],
    summary: 'seed the store from Cyrus\'s own dumps (replaces what is given, keeps the rest)',
    details:
      'Everything given is written in one transaction. The text quota report gives STORAGE usage in\n' +
      'KiB (rounded down); `quota -J` gives bytes but drops limits of 0. Cyrus 3.6 cannot name a\n' +
      'domain\'s own quota root in either: set those with smmapctl quota set @DOMAIN.',
    batch: false,
    run(ctx, _args, opts) {
      const files: ImportFiles = {
        ...(stringOpt(opts, 'mboxlist') !== undefined ? { mboxlist: stringOpt(opts, 'mboxlist') } : {}),
        ...(stringOpt(opts, 'quota') !== undefined ? { quota: stringOpt(opts, 'quota') } : {}),
        ...(stringOpt(opts, 'deny') !== undefined ? { deny: stringOpt(opts, 'deny') } : {}),
      };
      const r = importCyrus(ctx, files);
      for (const s of r.skipped) process.stderr.write(`smmapctl: skipped ${s}\n`);
      const parts = [
        r.mailboxes !== null ? `${r.mailboxes} mailboxes` : null,
        r.quotaRoots !== null ? `${r.quotaRoots} quota roots` : null,
        r.deny !== null ? `${r.deny} deny entries` : null,
      ].filter((p): p is string => p !== null);
      ctx.out(`imported ${parts.join(', ')}`);
    },
  },
];
