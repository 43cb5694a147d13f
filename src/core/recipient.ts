// From recipient key to Cyrus mailbox name (SPEC §2). STUB: signatures only.
import type { VirtDomains } from '../config';

export interface ResolveOptions {
  readonly virtdomains: VirtDomains;
  readonly defaultdomain: string;
  /** `postuser`: the userid whose detail names a shared folder ('' by default). */
  readonly postuser: string;
  /** `lmtp_downcase_rcpt`. */
  readonly downcase: boolean;
  /** '/' with unixhierarchysep (default), '.' without. */
  readonly separator: '/' | '.';
  /** `-p`: drop the detail. */
  readonly skipPlus: boolean;
}

export interface Recipient {
  /** User part plus `@domain` when a domain qualifies it; null for a shared folder (postuser). */
  readonly userid: string | null;
  /** Cyrus internal name: `[domain!]user.<local>[.<box>]*`, or `<box>[.<box>]*` for shared. */
  readonly mailbox: string;
}

/** The key as a string, or null when its bytes are not valid UTF-8 (it then names no mailbox). */
export function decodeKey(bytes: Buffer): string | null {
  throw new Error(`unimplemented ${bytes.length}`);
}

/** null: the key never names a mailbox (control characters, SPEC §2.9). */
export function resolveRecipient(key: string, o: ResolveOptions): Recipient | null {
  throw new Error(`unimplemented ${key} ${o.separator}`);
}
