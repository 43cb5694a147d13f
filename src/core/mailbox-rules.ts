// What Cyrus does to the mailbox tree when an admin creates or deletes a mailbox (behaviour §2):
// the ACL a new mailbox starts with, and which mailboxes and quota roots a DELETE takes along.
// Every store's write side (SQLite, memory) follows these, so they agree with Cyrus and each other.
import { initialAcl } from './acl';
import { ownerOf, parentOf } from './mboxname';

/**
 * The ACL Cyrus gives a new mailbox (mboxlist_create_acl): all rights for a user INBOX's
 * owner, else its nearest existing ancestor's ACL, else all rights for the owner of a user
 * folder or `anyone lrs` for a shared one. `aclOf` answers an existing mailbox's ACL, or null.
 */
export function newMailboxAcl(name: string, aclOf: (name: string) => string | null): string {
  const owner = ownerOf(name);
  const isUserInbox = owner !== null && parentOf(name) === null;
  let ancestor: string | null = null;
  if (!isUserInbox) {
    for (let p = parentOf(name); p !== null && ancestor === null; p = parentOf(p)) ancestor = aclOf(p);
  }
  return initialAcl(owner, isUserInbox, ancestor);
}

/**
 * Deleting a user's INBOX deletes the whole user, as Cyrus's DELETE does: every mailbox and
 * quota root at or below it. The prefix below which everything goes (`user.fred.`), or null
 * when only the mailbox itself goes.
 */
export function cascadePrefix(name: string): string | null {
  return ownerOf(name) !== null && parentOf(name) === null ? `${name}.` : null;
}

/** The first string after every string that starts with `prefix` (a range bound for prefix scans). */
export function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
