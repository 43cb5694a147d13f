// The benchmark's data set, generated deterministically so that our store and the Cyrus
// peer hold the same mailboxes, quota roots and ACLs (internal names, separator `.`).

export interface BenchQuota {
  readonly root: string;
  readonly storageKiB: number;
  readonly messages: number;
  readonly storageUsed: number;
  readonly messagesUsed: number;
}

export interface BenchData {
  readonly mailboxes: ReadonlyArray<{ readonly name: string; readonly acl: Record<string, string> }>;
  readonly quotas: readonly BenchQuota[];
  /** Users on the deny list (Cyrus 3.6 has none: its smmapd answers them OK). */
  readonly denied: readonly string[];
}

export function dataset(users: number): BenchData {
  const mailboxes: Array<{ name: string; acl: Record<string, string> }> = [];
  const quotas: BenchQuota[] = [];
  const denied: string[] = [];
  for (let i = 0; i < users; i++) {
    const owner = { [`u${i}`]: 'lrswipkxtecdan' };
    mailboxes.push({ name: `user.u${i}`, acl: owner });
    if (i % 10 === 0) mailboxes.push({ name: `user.u${i}.sub`, acl: owner });
    // every 4th user has a quota root; every 20th is over its storage limit
    if (i % 4 === 0) quotas.push({ root: `user.u${i}`, storageKiB: 10240, messages: 1000, storageUsed: i % 20 === 0 ? 20 << 20 : 4096, messagesUsed: 10 });
    if (i % 1000 === 1) denied.push(`u${i}`);
  }
  for (let j = 0; j < 1000; j++) mailboxes.push({ name: `shared.list${j}`, acl: { anyone: j % 5 === 0 ? 'lrs' : 'lrsp' } });
  return { mailboxes, quotas, denied };
}

/** As `smmapctl batch` lines (config with `unixhierarchysep: no`). */
export function batchLines(d: BenchData): string[] {
  const lines = d.mailboxes.map((m) => `mailbox create ${m.name}`);
  for (const m of d.mailboxes) if (m.name.startsWith('shared.')) lines.push(`acl set ${m.name} anyone ${m.acl.anyone}`);
  for (const q of d.quotas) {
    lines.push(`quota set ${q.root} --storage ${q.storageKiB} --message ${q.messages}`);
    lines.push(`quota usage ${q.root} --storage ${q.storageUsed} --message ${q.messagesUsed}`);
  }
  for (const u of d.denied) lines.push(`deny add ${u} --message "Account closed"`);
  return lines;
}

/** Cyrus 3.6 `ctl_mboxlist -u` input (the JSON that `ctl_mboxlist -d` writes). */
export function cyrusMboxlist(d: BenchData): string {
  const rows = d.mailboxes.map((m, i) => {
    const uid = `bench${String(i).padStart(19, '0')}`;
    return `${JSON.stringify(m.name)}: ${JSON.stringify({
      name: m.name, mtime: '1795258605', uidvalidity: '1795258606', createdmodseq: '1', foldermodseq: '1',
      mbtype: 'e', partition: 'default', acl: m.acl, uniqueid: uid, name_history: [],
    })}`;
  });
  return `{\n${rows.join(',\n')}\n}\n`;
}

/** `cyr_dbtool <quota dir> quotalegacy set` input: root TAB record (storage used in bytes, limit in KiB). */
export function cyrusQuotas(d: BenchData): string {
  return d.quotas.map((q) => `${q.root}\t%(S (${q.storageUsed} ${q.storageKiB}) M (${q.messagesUsed} ${q.messages}) AS (0) NF (1) MODSEQ 0)\n`).join('');
}

/** 50% hits, 20% misses, 15% plus-addresses, 10% over quota, 5% shared folders. */
export function benchKeys(users: number, n: number): string[] {
  let x = 42;
  const rand = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
  const pick = (m: number): number => Math.floor(rand() * m);
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    const r = rand();
    if (r < 0.5) out.push(`u${pick(users)}`);
    else if (r < 0.7) out.push(`nosuch${pick(users)}`);
    else if (r < 0.85) out.push(`u${pick(users / 10) * 10}+sub`);
    else if (r < 0.95) out.push(`u${pick(users / 20) * 20}`);
    else out.push(`+shared.list${pick(1000)}`);
  }
  return out;
}

/** `node dist/bench/dataset.js USERS DIR`: write the Cyrus peer's input files into DIR. */
if (require.main === module) {
  const users = Number(process.argv[2] ?? 100_000);
  const dir = process.argv[3] ?? '.';
  const fs = require('node:fs') as typeof import('node:fs');
  const d = dataset(users);
  fs.writeFileSync(`${dir}/mboxlist.json`, cyrusMboxlist(d));
  fs.writeFileSync(`${dir}/quotas.txt`, cyrusQuotas(d));
}
