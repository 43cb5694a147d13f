// smmapctl quota set|usage|delete|list.
import type { QuotaState } from '../store/store';
import type { CtlContext } from './context';
import { UsageError } from './context';
import { compareInternal, quotaRootName, shownName } from './names';
import { parseCount, parseLimit, stringOpt, type CommandSpec } from './spec';

export const quotaCommands: readonly CommandSpec[] = [
  {
    words: ['quota', 'set'],
    args: [{ name: 'ROOT' }],
    options: [
      { long: 'storage', value: 'KIB|none', description: 'STORAGE limit in KiB, or none for unlimited' },
      { long: 'message', value: 'N|none', description: 'MESSAGE limit, or none for unlimited' },
    ],
    summary: 'create a quota root or change its limits',
    details:
      'ROOT need not be a mailbox; @example.com is the root of a whole domain. A limit not given\n' +
      'is left as it was (unlimited on a new root).',
    batch: true,
    run(ctx, [root], opts) {
      const storage = stringOpt(opts, 'storage');
      const message = stringOpt(opts, 'message');
      ctx.store(true).setQuota(quotaRootName(ctx, root!), {
        ...(storage !== undefined ? { storageLimitKiB: parseLimit('--storage', storage) } : {}),
        ...(message !== undefined ? { messageLimit: parseLimit('--message', message) } : {}),
      });
    },
  },
  {
    words: ['quota', 'usage'],
    args: [{ name: 'ROOT' }],
    options: [
      { long: 'storage', value: 'BYTES', description: 'STORAGE used, in bytes' },
      { long: 'message', value: 'N', description: 'MESSAGE used (number of messages)' },
    ],
    summary: "record a quota root's usage",
    batch: true,
    run(ctx, [root], opts) {
      const storage = stringOpt(opts, 'storage');
      const message = stringOpt(opts, 'message');
      if (storage === undefined && message === undefined) throw new UsageError('quota usage: give --storage, --message or both');
      ctx.store(true).setQuotaUsage(quotaRootName(ctx, root!), {
        ...(storage !== undefined ? { storageUsed: parseCount('--storage', storage) } : {}),
        ...(message !== undefined ? { messageUsed: parseCount('--message', message) } : {}),
      });
    },
  },
  {
    words: ['quota', 'delete'],
    args: [{ name: 'ROOT' }],
    summary: 'remove a quota root (one that is not there is fine)',
    batch: true,
    run(ctx, [root]) {
      ctx.store(true).deleteQuota(quotaRootName(ctx, root!));
    },
  },
  {
    words: ['quota', 'list'],
    args: [],
    summary: "report every quota root's limits and usage (like Cyrus's quota tool)",
    details:
      'Columns as in Cyrus quota(8): limit, percentage used, usage, resource, root. STORAGE limits\n' +
      'are in KiB but its usage is shown in exact bytes (Cyrus shows KiB rounded down).',
    batch: true,
    run(ctx) {
      const roots = ctx.store(false).listQuotas();
      roots.sort((a, b) => compareInternal(a.root, b.root));
      for (const line of quotaReport(ctx, roots)) ctx.out(line);
    },
  },
];

const pad = (s: string | number, width: number): string => String(s).padStart(width);

/** One resource line, laid out like Cyrus's reportquota_resource() (imap/quota.c). */
function resourceLine(limit: number | null, used: number, unit: number, resource: string, root: string): string {
  let head: string;
  if (limit === null) head = ' '.repeat(17);
  else if (limit === 0) head = '       0         ';
  else head = ` ${pad(limit, 7)} ${pad(Math.floor((used * 100) / (limit * unit)), 8)}`;
  return `${head} ${pad(used, 8)} ${pad(resource, 20)} ${root}`;
}

export function quotaReport(ctx: CtlContext, roots: readonly QuotaState[]): string[] {
  const lines = ['   Quota   % Used     Used             Resource Root'];
  for (const q of roots) {
    const root = shownName(ctx, q.root);
    lines.push(resourceLine(q.storageLimitKiB, q.storageUsed, 1024, 'STORAGE', root));
    lines.push(resourceLine(q.messageLimit, q.messageUsed, 1, 'MESSAGE', root));
  }
  return lines;
}
