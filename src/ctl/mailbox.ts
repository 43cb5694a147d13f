// smmapctl mailbox create|delete|list, and acl set|delete|list.
import { parseAcl } from '../core/acl';
import type { CtlContext } from './context';
import { compareInternal, listMatcher, mailboxName, shownName } from './names';
import type { CommandSpec } from './spec';

export const mailboxCommands: readonly CommandSpec[] = [
  {
    words: ['mailbox', 'create'],
    args: [{ name: 'NAME' }],
    summary: 'create a mailbox (never its parents)',
    details:
      'The new mailbox copies the ACL of its nearest existing ancestor; a user INBOX gives its\n' +
      'owner all rights; a new top-level shared folder gets "anyone lrs". Creating an existing\n' +
      'mailbox is an error.',
    batch: true,
    run(ctx, [name]) {
      ctx.store(true).createMailbox(mailboxName(ctx, name!));
    },
  },
  {
    words: ['mailbox', 'delete'],
    args: [{ name: 'NAME' }],
    summary: 'delete a mailbox',
    details:
      "Deleting a user's INBOX deletes the whole user, as Cyrus does: every folder below it and\n" +
      'the quota roots at and below it. Deleting a mailbox that does not exist is an error.',
    batch: true,
    run(ctx, [name]) {
      ctx.store(true).deleteMailbox(mailboxName(ctx, name!));
    },
  },
  {
    words: ['mailbox', 'list'],
    args: [{ name: 'PATTERN', optional: true }],
    summary: 'list mailboxes matching a pattern (default *), sorted',
    details: 'Cyrus LIST wildcards: * matches anything, % anything but the hierarchy separator.',
    batch: true,
    run(ctx, [pattern]) {
      listMailboxes(ctx, pattern ?? '*');
    },
  },
  {
    words: ['acl', 'set'],
    args: [{ name: 'NAME' }, { name: 'IDENTIFIER' }, { name: 'RIGHTS' }],
    summary: "set an identifier's rights on a mailbox",
    details:
      'RIGHTS: letters (lrswipkxtecdan), +letters or -letters to add or remove, a cyradm keyword\n' +
      '(none, read, post, append, write, delete, all); none removes the entry. A negative entry\n' +
      "is written -anyone; put -- first so it is not taken for an option: acl set shared.x -- -anyone p",
    batch: true,
    run(ctx, [name, identifier, rights]) {
      ctx.store(true).setAcl(mailboxName(ctx, name!), identifier!, rights!);
    },
  },
  {
    words: ['acl', 'delete'],
    args: [{ name: 'NAME' }, { name: 'IDENTIFIER' }],
    summary: "remove an identifier's entry (an absent entry is fine)",
    batch: true,
    run(ctx, [name, identifier]) {
      ctx.store(true).deleteAcl(mailboxName(ctx, name!), identifier!);
    },
  },
  {
    words: ['acl', 'list'],
    args: [{ name: 'NAME' }],
    summary: 'show a mailbox ACL, one "identifier rights" per line (cyradm lam)',
    batch: true,
    run(ctx, [name]) {
      for (const [id, rights] of parseAcl(ctx.store(false).getAcl(mailboxName(ctx, name!)))) ctx.out(`${id} ${rights}`);
    },
  },
];

function listMailboxes(ctx: CtlContext, pattern: string): void {
  const match = listMatcher(ctx, pattern);
  const names = ctx
    .store(false)
    .listMailboxes()
    .map((m) => m.name)
    .sort(compareInternal);
  for (const name of names) {
    const shown = shownName(ctx, name);
    if (match(shown)) ctx.out(shown);
  }
}
