// The real Postfix as a socketmap client: `postmap -q`, and a private smtpd (ported from
// a reference script for a private Postfix smtpd) whose virtual_mailbox_maps is our socketmap, driven
// over SMTP so that each RCPT TO reply shows what Postfix makes of each answer.
// Pitfalls kept from the script: maillog_file=<file> makes a directly started master exit
// silently (no /dev/log to say why), so logs go to /dev/stdout with `master -s`, and that
// stdout must be a FILE (with a pipe, smtpd hangs on its first lookup); no qmgr, so nothing
// is ever delivered; the queue, data and config live in a temp dir.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, childrenOf, freePort, pidsMatching, waitFor, waitForPort } from './base';
import { EXAMPLE, readExample, substitute } from './fixture';
import { rcptDialogue, smtpDialogue, type SmtpReplies, type SmtpSession } from './smtp';

export interface PostmapResult {
  readonly status: number | null;
  readonly out: string;
}

let emptyConfigDir: string | null = null;

/** `postmap -c DIR -q KEY MAP` with an empty main.cf (postmap needs a config directory). */
export function postmapQuery(map: string, key: string): PostmapResult {
  if (emptyConfigDir === null) {
    // one shared, empty config directory: nothing in it to clean up or to race on
    emptyConfigDir = join(tmpdir(), 'smmapd-postmap-empty-config');
    mkdirSync(emptyConfigDir, { recursive: true });
    writeFileSync(join(emptyConfigDir, 'main.cf'), '');
  }
  const r = spawnSync('postmap', ['-c', emptyConfigDir, '-q', key, map], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

/** `postmap -q -` : keys on stdin, `key<TAB>value` for each one found. */
export function postmapBatch(map: string, keys: readonly string[]): PostmapResult {
  postmapQuery(map, 'warm-up-config-dir');
  const r = spawnSync('postmap', ['-c', emptyConfigDir!, '-q', '-', map], { input: `${keys.join('\n')}\n`, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

export interface Smtpd {
  readonly port: number;
  readonly dir: string;
  /** RCPT TO replies ("250 2.1.5 Ok") for each address, in one SMTP session. */
  rcpt(addresses: readonly string[]): Promise<string[]>;
  /** MAIL FROM (with SIZE= when given), RCPT TOs, then DATA when a body is given: every reply. */
  session(d: SmtpSession): Promise<SmtpReplies>;
  maillog(): string;
  /** Stop the instance; returns its processes that had to be killed (none, normally). */
  stop(): Promise<number[]>;
}

/**
 * main.cf for the private instance: its own directories and loopback listener, then the
 * example's lines (conf/postfix-main.cf) with the test's map, domain, and a transport that
 * is never reached (no DATA, no qmgr) in place of Cyrus's LMTP.
 */
function mainCf(w: string, map: string, domain: string, policy: string | null): string {
  const example = substitute(readExample('postfix-main.cf'), [
    // the example's policy lines: with the test's smmapd --policy, or left out
    policy !== null ? [`inet:${EXAMPLE.host}:12346`, policy] : [/^smtpd_(recipient|end_of_data)_restrictions = check_policy_service .*$/gm, ''],
    [`socketmap:inet:${EXAMPLE.host}:${EXAMPLE.port}:smmapd`, map],
    [/^virtual_mailbox_domains = .*$/m, `virtual_mailbox_domains = ${domain}`],
    // proxymap is not started in this minimal instance: ask the map directly.
    ['proxy:socketmap:', 'socketmap:'],
    [/^virtual_transport = .*$/m, 'virtual_transport = discard:private test instance'],
  ]);
  return `compatibility_level = 3.6
queue_directory = ${w}/spool
data_directory = ${w}/data
maillog_file = /dev/stdout
mail_owner = postfix
setgid_group = postdrop
myhostname = pfx.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
smtputf8_enable = no
biff = no
smtpd_banner = $myhostname ESMTP private-postfix-test
${example}
`;
}

/** A private Postfix smtpd whose recipients are checked by the socketmap `map` (socketmap:...). */
export async function startSmtpd(map: string, domain = 'example.test', opts: { policy?: string } = {}): Promise<Smtpd> {
  const port = await freePort();
  const w = mkdtempSync(join(tmpdir(), 'smmapd-postfix-'));
  chmodSync(w, 0o755);
  const spool = join(w, 'spool');
  for (const d of ['etc', 'data', 'spool']) mkdirSync(join(w, d));
  const qdirs = ['pid', 'private', 'public', 'incoming', 'active', 'bounce', 'defer', 'deferred', 'corrupt', 'flush', 'hold', 'maildrop', 'saved', 'trace'];
  for (const d of qdirs) mkdirSync(join(spool, d));
  const sh = (cmd: string): void => {
    const r = spawnSync('sh', ['-c', cmd], { cwd: spool, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  };
  sh('chown postfix private public incoming active bounce defer deferred corrupt flush hold maildrop saved trace && chgrp postdrop public maildrop && chmod 700 private incoming active bounce defer deferred corrupt flush hold saved trace && chmod 710 public && chmod 730 maildrop');
  sh(`chown postfix ${w}/data && chmod 700 ${w}/data`);
  writeFileSync(join(w, 'etc', 'main.cf'), mainCf(w, map, domain, opts.policy ?? null));
  writeFileSync(join(w, 'etc', 'master.cf'), [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    'cleanup   unix n - n - 0 cleanup',
    'rewrite   unix - - n - - trivial-rewrite',
    'anvil     unix - - n - 1 anvil',
    'postlog   unix-dgram n - n - 1 postlogd',
    '',
  ].join('\n'));
  const daemonDir = spawnSync('postconf', ['-dh', 'daemon_directory'], { encoding: 'utf8' }).stdout.trim();
  // The log goes to a file the master's stdout is redirected to (as the script does).
  const logFile = join(w, 'maillog');
  const fd = openSync(logFile, 'a');
  const master: ChildProcess = spawn(join(daemonDir, 'master'), ['-c', join(w, 'etc'), '-s'], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  try {
    await waitForPort(port, 15_000);
  } catch (e) {
    master.kill('SIGKILL');
    throw new Error(`postfix master did not listen: ${(e as Error).message}\n${log()}`);
  }
  const marker = `MAIL_CONFIG=${w}/etc`;
  const children = (): number[] => pidsMatching(`-c ${w}/etc`).concat(byEnv(marker));
  return {
    port,
    dir: w,
    rcpt: (addresses) => smtpRcpt(port, addresses),
    session: (d) => smtpSession(port, d),
    maillog: log,
    stop: async () => {
      // Children first (the master reaps them), then the master; then anything it respawned.
      const kids = childrenOf(master.pid!);
      for (const k of kids) try { process.kill(k, 'SIGTERM'); } catch { /* gone */ }
      await waitFor(() => kids.every((k) => !alive(k)), 5000);
      master.kill('SIGTERM');
      await waitFor(() => master.exitCode !== null || master.signalCode !== null, 5000);
      for (const p of children()) try { process.kill(p, 'SIGTERM'); } catch { /* gone */ }
      await waitFor(() => children().length === 0, 3000);
      const left = children();
      for (const p of left) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      rmSync(w, { recursive: true, force: true });
      return left;
    },
  };
}

/** Processes whose environment holds `marker` (Postfix daemons carry MAIL_CONFIG). */
function byEnv(marker: string): number[] {
  const out: number[] = [];
  const r = spawnSync('sh', ['-c', `for e in /proc/[0-9]*/environ; do tr '\\0' '\\n' < "$e" 2>/dev/null | grep -qx '${marker}' && { p=\${e#/proc/}; echo \${p%/environ}; }; done`], { encoding: 'utf8' });
  for (const l of r.stdout.split('\n')) if (Number(l) > 0) out.push(Number(l));
  return out;
}

/** One SMTP session: EHLO, MAIL FROM, a RCPT TO per address; the replies as one line each. */
async function smtpRcpt(port: number, addresses: readonly string[]): Promise<string[]> {
  const sock = net.connect({ host: '127.0.0.1', port });
  sock.setTimeout(60_000, () => sock.destroy(new Error('SMTP timeout')));
  try {
    return await rcptDialogue(sock, (l) => sock.write(l), 'tester@client.test', addresses);
  } finally {
    sock.destroy();
  }
}

async function smtpSession(port: number, d: SmtpSession): Promise<SmtpReplies> {
  const sock = net.connect({ host: '127.0.0.1', port });
  sock.setTimeout(60_000, () => sock.destroy(new Error('SMTP timeout')));
  try {
    return await smtpDialogue(sock, (l) => sock.write(l), d);
  } finally {
    sock.destroy();
  }
}

export const postfixAvailable = (): boolean => spawnSync('sh', ['-c', 'command -v postmap && command -v postconf']).status === 0;

