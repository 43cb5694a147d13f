// Mailbox names: what an admin writes (cyradm lm, SPEC §2 last paragraph) and Cyrus's
// internal form that stores keep. STUB: signatures only.
import type { VirtDomains } from '../config';

export interface NameOptions {
  readonly separator: '/' | '.';
  readonly virtdomains: VirtDomains;
  readonly defaultdomain: string;
}

export class NameError extends Error {}

/** `user/fred.smith/sub@example.com` → `example.com!user.fred^smith.sub`; `@example.com` → `example.com!`. Throws NameError. */
export function toInternal(external: string, o: NameOptions): string { throw new NameError(`unimplemented ${external} ${o.separator}`); }
/** The inverse of toInternal. */
export function toExternal(internal: string, o: NameOptions): string { throw new NameError(`unimplemented ${internal} ${o.separator}`); }
/** Cyrus quota_findroot order: the name, each parent up to the top, then `domain!` for a name in a domain. */
export function quotaRootCandidates(internal: string): string[] { throw new Error(`unimplemented ${internal}`); }
/** The parent's internal name, or null at the top (`user.fred` → `user`? no: null; see mboxname.ts). */
export function parentOf(internal: string): string | null { throw new Error(`unimplemented ${internal}`); }
/** The owning userid (`fred`, `fred@example.com`) of a user mailbox, null for a shared one. */
export function ownerOf(internal: string): string | null { throw new Error(`unimplemented ${internal}`); }
