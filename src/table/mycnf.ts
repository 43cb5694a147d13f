// MySQL/MariaDB option files as libmariadb reads them for Postfix's mysql table:
// Postfix sets MYSQL_READ_DEFAULT_GROUP (option_group, default `client`) and, with
// option_file, MYSQL_READ_DEFAULT_FILE; the client library then reads that file, or else the
// default ones (/etc/my.cnf, /etc/mysql/my.cnf, ~/.my.cnf), following !include and
// !includedir, and takes the options of the groups client, client-server, client-mariadb and
// the one named. Only the options that change where and how a lookup connects are kept.
import { readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_OPTION_FILES: readonly string[] = ['/etc/my.cnf', '/etc/mysql/my.cnf', join(homedir(), '.my.cnf')];

/** The options read, by name with `_` as `-` (the last one read wins, as in the library). */
export type MyOptions = Map<string, string>;

// what reaches Postfix's connection from the files (Postfix always passes its password and dbname)
const KEPT = new Set(['host', 'port', 'socket', 'user', 'ssl', 'ssl-ca', 'ssl-capath', 'ssl-cert', 'ssl-key', 'ssl-cipher', 'ssl-verify-server-cert']);

/** Read `files` (missing ones skipped, as the library skips them) for `groups`. */
export function readOptionFiles(files: readonly string[], groups: readonly string[], out: MyOptions = new Map(), depth = 0): MyOptions {
  const want = new Set(groups.map((g) => g.toLowerCase()));
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    let inGroup = false;
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
      if (depth < 10 && line.startsWith('!includedir')) {
        const dir = line.slice('!includedir'.length).trim();
        let names: string[] = [];
        try {
          names = readdirSync(dir).filter((n) => n.endsWith('.cnf')).sort();
        } catch {
          // a missing directory is skipped
        }
        readOptionFiles(names.map((n) => join(dir, n)), groups, out, depth + 1);
        continue;
      }
      if (depth < 10 && line.startsWith('!include')) {
        readOptionFiles([line.slice('!include'.length).trim()], groups, out, depth + 1);
        continue;
      }
      const g = /^\[([^\]]*)\]/.exec(line);
      if (g) {
        inGroup = want.has(g[1]!.trim().toLowerCase());
        continue;
      }
      if (!inGroup) continue;
      const eq = line.indexOf('=');
      const name = (eq < 0 ? line : line.slice(0, eq)).trim().replace(/_/g, '-').replace(/^loose-/, '');
      if (!KEPT.has(name)) continue;
      let value = eq < 0 ? '' : line.slice(eq + 1).trim();
      if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
      else value = value.replace(/\s+#.*$/, '');
      out.set(name, value);
    }
  }
  return out;
}

/** The groups libmariadb reads for MYSQL_READ_DEFAULT_GROUP `group`. */
export function optionGroups(group: string): string[] {
  const g = ['client', 'client-server', 'client-mariadb'];
  if (group !== '' && !g.includes(group.toLowerCase())) g.push(group);
  return g;
}
