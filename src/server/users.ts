// Unix user and group names to ids for chown of a unix socket (Node has no getpwnam).
import { readFileSync } from 'node:fs';

function lookup(file: string, what: string, name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined) return Number(f[2]);
  }
  throw new Error(`no such ${what}: ${name}`);
}

export const lookupUser = (name: string): number => lookup('/etc/passwd', 'user', name);
export const lookupGroup = (name: string): number => lookup('/etc/group', 'group', name);

/** A user's uid and primary gid from /etc/passwd (a number is taken as a uid with gid -1). */
export function userEntry(name: string): { uid: number; gid: number } {
  if (/^\d+$/.test(name)) return { uid: Number(name), gid: -1 };
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined && f[3] !== undefined) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new Error(`no such user: ${name}`);
}
