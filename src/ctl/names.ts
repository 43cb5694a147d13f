// Mailbox names as the admin writes them (behaviour §2, last paragraph) and as the store keeps
// them, plus the ordering and LIST patterns smmapctl's listings use.
import { NameError, toExternal, toInternal } from '../core/mboxname';
import { splitDomain } from '../core/namecodec';
import { AdminError } from '../store/store';
import type { CtlContext } from './context';
import { UsageError } from './context';

/** A mailbox name as typed → internal. Domain roots (`@example.com`) and `user` alone are refused. */
export function mailboxName(ctx: CtlContext, external: string): string {
  const name = internalName(ctx, external);
  const local = splitDomain(name)[1];
  if (local === '' || local === 'user') throw new UsageError(`${external}: not a mailbox name`);
  return name;
}

/** A quota root as typed → internal: any mailbox name, or `@example.com` for a domain. */
export function quotaRootName(ctx: CtlContext, external: string): string {
  return internalName(ctx, external);
}

function internalName(ctx: CtlContext, external: string): string {
  if (external === '') throw new UsageError('empty mailbox name');
  try {
    return toInternal(external, ctx.names);
  } catch (e) {
    if (e instanceof NameError) {
      throw new UsageError(e.message.startsWith(`${external}: `) ? e.message : `${external}: ${e.message}`);
    }
    throw e;
  }
}

/** Internal → what the admin sees; a name we cannot show is shown as stored. */
export function shownName(ctx: CtlContext, internal: string): string {
  try {
    return toExternal(internal, ctx.names);
  } catch {
    return internal;
  }
}

/**
 * Listing order: by domain (the default domain first), then by name with the hierarchy
 * separator below every other character, so `user.fred` is followed by its folders and
 * then by `user.fred-x` (Cyrus orders its mailbox list the same way).
 */
export function compareInternal(a: string, b: string): number {
  const [da, ba] = splitDomain(a);
  const [db, bb] = splitDomain(b);
  if ((da ?? '') !== (db ?? '')) return (da ?? '') < (db ?? '') ? -1 : 1;
  const n = Math.min(ba.length, bb.length);
  for (let k = 0; k < n; k++) {
    const ca = ba.charCodeAt(k);
    const cb = bb.charCodeAt(k);
    if (ca === cb) continue;
    if (ca === 0x2e) return -1;
    if (cb === 0x2e) return 1;
    return ca - cb;
  }
  return ba.length - bb.length;
}

/**
 * A Cyrus LIST pattern over external names: `*` matches anything, `%` anything but the
 * hierarchy separator (and, with virtual domains, the `@` before a domain).
 */
export function listMatcher(ctx: CtlContext, pattern: string): (external: string) => boolean {
  const stop = ctx.names.virtdomains === 'off' ? ctx.names.separator : `${ctx.names.separator}@`;
  const notStop = `[^${stop.replace(/[\\\]^-]/g, '\\$&')}]*`;
  let re = '^';
  for (const ch of pattern) {
    if (ch === '*') re += '.*';
    else if (ch === '%') re += notStop;
    else re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  const rx = new RegExp(`${re}$`, 's');
  return (name) => rx.test(name);
}

/** The store names mailboxes internally in its errors: show them as the admin wrote them. */
export function explainError(ctx: CtlContext, e: unknown): unknown {
  if (e instanceof AdminError && e.subject !== undefined) {
    return new AdminError(e.problem, shownName(ctx, e.subject));
  }
  return e;
}
