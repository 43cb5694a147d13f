// The real Sendmail 8 (Debian's sendmail-bin, unpacked by .ci/install-peers with dpkg -x, never
// installed: it conflicts with Postfix) as a socketmap client, ported from
// a reference script for Sendmail in -bt mode: address test mode (-bt, `/map cyrus KEY`) with a minimal
// hand-written .cf, and SMTP (-bs) with a sendmail.cf built by m4 from the example
// conf/sendmail.mc. Pitfall kept from the script: on an unqualified host name Sendmail sleeps
// 60 s at every start, so it runs under unshare(1) with a private UTS and mount namespace
// (hostname smtest.localdomain, private /etc/hosts and /etc/resolv.conf); nothing on the host
// changes.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readExample, substitute } from './fixture';
import { rcptDialogue } from './smtp';

const CANDIDATES = [process.env.SM_ROOT, '/var/cache/smmapd-test/sendmail/root', '/tmp/smtest/root'];

export function sendmailRoot(): string | null {
  for (const r of CANDIDATES) if (r !== undefined && existsSync(join(r, 'usr/libexec/sendmail/sendmail'))) return r;
  return null;
}

export function unshareWorks(): boolean {
  return spawnSync('unshare', ['--uts', '--mount', 'true']).status === 0;
}

/** The example's LOCAL_CONFIG/LOCAL_RULESETS, pointed at HOST:PORT. */
export function exampleMc(host: string, port: number): string {
  const text = readExample('sendmail.mc');
  return substitute(text, [['inet:12345@127.0.0.1', host.includes(':') ? `inet6:${port}@${host}` : `inet:${port}@${host}`]]);
}

/** The example's K line (the socket map), pointed at HOST:PORT. */
export function exampleMapLine(host: string, port: number): string {
  const line = exampleMc(host, port).split('\n').find((l) => l.startsWith('Kcyrus socket '));
  if (line === undefined) throw new Error('conf/sendmail.mc has no Kcyrus socket line');
  return line;
}

export class Sendmail {
  readonly dir: string;
  readonly bin: string;

  constructor(readonly root: string) {
    this.bin = join(root, 'usr/libexec/sendmail/sendmail');
    this.dir = mkdtempSync(join(tmpdir(), 'smmapd-sendmail-'));
    mkdirSync(join(this.dir, 'q'));
    chmodSync(join(this.dir, 'q'), 0o700);
    writeFileSync(join(this.dir, 'aliases'), '');
    writeFileSync(join(this.dir, 'hosts'), '127.0.0.1 smtest.localdomain smtest localhost.localdomain localhost\n');
    writeFileSync(join(this.dir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
  }

  /** argv run with a qualified host name and no DNS, in private namespaces. */
  private ns(argv: readonly string[]): string[] {
    return ['unshare', '--uts', '--mount', 'sh', '-c',
      'mount --bind "$0/hosts" /etc/hosts && mount --bind "$0/resolv.conf" /etc/resolv.conf && hostname smtest.localdomain && exec "$@"',
      this.dir, ...argv];
  }

  /** `/map cyrus KEY` in -bt mode for each key: the `map_lookup: ...` lines. */
  mapLookups(mapLine: string, keys: readonly string[]): string[] {
    const cf = join(this.dir, 'bt.cf');
    writeFileSync(cf, [
      'V10/Berkeley',
      'Djsmtest.localdomain',
      `O QueueDirectory=${this.dir}/q`,
      'O DontBlameSendmail=TrustStickyBit',
      mapLine,
      'Mlocal, P=/bin/true, F=lsDFMAw5:/|@qSPfhn9, S=0, R=0, A=true',
      'Mprog, P=/bin/sh, F=lsDFMoqeu9, S=0, R=0, D=$z:/, A=sh -c $u',
      '',
    ].join('\n'));
    const [cmd, ...args] = this.ns([this.bin, `-C${cf}`, '-bt']);
    const r = spawnSync(cmd!, args, { input: keys.map((k) => `/map cyrus ${k}\n`).join(''), encoding: 'utf8', timeout: 60_000 });
    const out = `${r.stdout}${r.stderr}`;
    return out.split('\n').map((l) => /^>\s*(map_lookup: .*)$/.exec(l)?.[1]).filter((l): l is string => l !== undefined);
  }

  /** sendmail.cf from cf.m4, the cyrusv2 mailer, and the example's rules. */
  buildCf(localPart: string, aliasFile?: string): string {
    const d = this.dir;
    const mc = join(d, 'test.mc');
    writeFileSync(mc, [
      'divert(0)dnl',
      "VERSIONID(`socketmap interop test')dnl",
      "OSTYPE(`linux')dnl",
      "define(`confDOMAIN_NAME', `smtest.localdomain')dnl",
      `define(\`QUEUE_DIR', \`${d}/q')dnl`,
      `define(\`STATUS_FILE', \`${d}/statistics')dnl`,
      `define(\`ALIAS_FILE', \`${aliasFile ?? `${d}/aliases`}')dnl`,
      `define(\`confPID_FILE', \`${d}/sendmail.pid')dnl`,
      `define(\`HELP_FILE', \`${d}/helpfile')dnl`,
      "define(`confDONT_PROBE_INTERFACES', `True')dnl",
      "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl",
      `define(\`CYRUSV2_MAILER_ARGS', \`FILE ${d}/lmtp')dnl`,
      "FEATURE(`nouucp', `reject')dnl",
      "MAILER(`local')dnl",
      "MAILER(`smtp')dnl",
      "MAILER(`cyrusv2')dnl",
      localPart,
    ].join('\n'));
    const cf = join(d, 'test.cf');
    const m4 = spawnSync('m4', [join(this.root, 'usr/share/sendmail/cf/m4/cf.m4'), mc], { encoding: 'utf8' });
    if (m4.status !== 0) throw new Error(`m4: ${m4.stderr}`);
    writeFileSync(cf, m4.stdout);
    const [cmd, ...args] = this.ns([this.bin, `-C${cf}`, '-bi']);
    spawnSync(cmd!, args, { timeout: 60_000 }); // aliases.db
    return cf;
  }

  /** `sendmail -bv ADDRESS...`: the recipients each address expands to, one line each. */
  verify(cf: string, addresses: readonly string[]): string[] {
    const [cmd, ...args] = this.ns([this.bin, `-C${cf}`, '-bv', ...addresses]);
    const r = spawnSync(cmd!, args, { encoding: 'utf8', timeout: 60_000 });
    return `${r.stdout}${r.stderr}`.split('\n').filter((l) => l !== '');
  }

  /** One SMTP session over -bs: a RCPT TO per address; each reply's last line. */
  async rcpt(cf: string, addresses: readonly string[]): Promise<string[]> {
    const [cmd, ...args] = this.ns([this.bin, `-C${cf}`, '-bs']);
    const p = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    try {
      return await rcptDialogue(p.stdout, (l) => p.stdin.write(l), 'tester@localhost', addresses);
    } finally {
      clearTimeout(timer);
      p.stdin.end();
      if (p.exitCode === null) setTimeout(() => p.kill('SIGKILL'), 2000).unref();
    }
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
