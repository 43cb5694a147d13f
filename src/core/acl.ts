// Cyrus ACLs (lib/acl_afs.c, SPEC §3.3). STUB: signatures only.
export function anonymousMayPost(acl: string): boolean { throw new Error(`unimplemented ${acl}`); }
export function anonymousMayLookup(acl: string): boolean { throw new Error(`unimplemented ${acl}`); }
export class AclError extends Error {}
/** Cyrus ACL text → [identifier, rights] pairs, in order. */
export function parseAcl(acl: string): Array<[string, string]> { throw new AclError(`unimplemented ${acl}`); }
export function formatAcl(entries: ReadonlyArray<readonly [string, string]>): string { throw new AclError(`unimplemented ${entries.length}`); }
/** SETACL: rights letters, `+letters`/`-letters` to add/remove, or a cyradm keyword; empty/none removes. Throws AclError. */
export function setAclEntry(acl: string, identifier: string, rights: string): string { throw new AclError(`unimplemented ${acl}${identifier}${rights}`); }
/** DELETEACL; deleting an absent entry is fine. */
export function deleteAclEntry(acl: string, identifier: string): string { throw new AclError(`unimplemented ${acl}${identifier}`); }
/** The ACL a new mailbox gets: parent's (nearest existing ancestor) copied, owner all rights for a user INBOX, `anyone lrs` for a new top-level shared folder. */
export function initialAcl(owner: string | null, isUserInbox: boolean, ancestorAcl: string | null): string { throw new AclError(`unimplemented ${owner}${isUserInbox}${ancestorAcl}`); }
