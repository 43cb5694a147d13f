// README "Coming from sockmapd", tested with sockmapd's own table shapes on a real MariaDB:
// dbmail's aliases (one row per alias target) and the access-map `blackwhite` table with a
// status and a reason. The translated .cf files must answer what sockmapd answered for every
// key where sockmapd was right; sockmapd's answers are those of its service/Postmap.go
// (first row only; `OK <status>` for OK and REJECT, the reason after a blank when not
// empty). Then smmapd_verify_maps: a map name nobody configured answers TEMP and is logged.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ctlOk, freePort } from '../helpers/base';
import { startSmmapd, type Smmapd } from '../helpers/daemon';
import { directoriesMissing, mysqlSql, startMysql, stopMysql, type My } from '../helpers/directories';
import { describeWithPeer } from '../helpers/suite';
import { query } from '../helpers/socketmap';

/** dbmail_aliases: alias -> deliver_to, one row per target. */
const ALIASES: ReadonlyArray<readonly [string, string]> = [
  ['info@example.com', 'fred@example.com'],
  ['team@example.com', 'fred@example.com'],
  ['team@example.com', 'barney@example.com'],
  ['team@example.com', 'wilma@example.org'],
  ['postmaster@example.com', 'root@example.com'],
];

/** blackwhite: name -> status, reason. */
const BLACKWHITE: ReadonlyArray<readonly [string, string, string | null]> = [
  ['friend.example', 'OK', 'whitelisted'],
  ['spam.example', 'REJECT', 'spam source'],
  ['quiet.example', 'REJECT', ''],
  ['203.0.113.7', 'OK', 'our relay'],
  ['nulls.example', 'REJECT', null],
];

/** What sockmapd (service/Postmap.go) answers for a key of the recipient (no value) map. */
function sockmapdRecipient(key: string): string {
  return ALIASES.some(([a]) => a === key) ? `OK ${key}` : 'NOTFOUND ';
}

/** ... and of the blacklist map (value = status, reason = reason); null where sockmapd is wrong (NULL reason). */
function sockmapdBlacklist(key: string): string | null {
  const row = BLACKWHITE.find(([n]) => n === key);
  if (row === undefined) return 'NOTFOUND ';
  const [, status, reason] = row;
  if (reason === null) return null; // Scan of NULL into a string fails: sockmapd answers garbage
  const r = status === 'OK' || status === 'REJECT' ? `OK ${status}` : status;
  return reason.length > 0 ? `${r} ${reason}` : r;
}

const KEYS = [...ALIASES.map(([a]) => a), ...BLACKWHITE.map(([n]) => n), 'nosuch@example.com', 'other.example', "x' OR '1'='1"];

describeWithPeer('Coming from sockmapd: its table shapes through the README translation', directoriesMissing(), () => {
  let dir: string;
  let my: My;
  let daemon: Smmapd;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smmapd-sockmapd-'));
    chmodSync(dir, 0o755);
    my = await startMysql(join(dir, 'my'), await freePort());
    const q = (s: string | null): string => (s === null ? 'NULL' : `'${s.replace(/'/g, "''")}'`);
    mysqlSql(my.port, `CREATE TABLE dbmail_aliases (alias_idnr int AUTO_INCREMENT PRIMARY KEY, alias varchar(255) NOT NULL, deliver_to varchar(255) NOT NULL);
      INSERT INTO dbmail_aliases (alias, deliver_to) VALUES ${ALIASES.map(([a, d]) => `(${q(a)}, ${q(d)})`).join(', ')};
      CREATE TABLE blackwhite (name varchar(255) PRIMARY KEY, status varchar(16) NOT NULL, reason varchar(255));
      INSERT INTO blackwhite VALUES ${BLACKWHITE.map(([n, s, r]) => `(${q(n)}, ${q(s)}, ${q(r)})`).join(', ')};`);
    const common = `hosts = inet:127.0.0.1:${my.port}\nuser = postfix\npassword = pw\ndbname = mail\n`;
    // the README's translations, word for word
    writeFileSync(join(dir, 'recipient.cf'), `${common}query = SELECT alias FROM dbmail_aliases WHERE alias='%s' LIMIT 1\n`);
    writeFileSync(join(dir, 'blacklist.cf'), `${common}query = SELECT CONCAT_WS(' ', status, NULLIF(reason, '')) FROM blackwhite WHERE name='%s' LIMIT 1\n`);
    writeFileSync(join(dir, 'smmapd.conf'), [
      `configdirectory: ${dir}`, `smmapd_store: ${dir}/smmapd.db`, 'smmapd_maps_timeout: 8',
      `smmapd_map_recipient: mysql:${dir}/recipient.cf`, `smmapd_map_blacklist: mysql:${dir}/blacklist.cf`,
      'smmapd_verify_maps: smmapd Cyrus', 'smmapd_workers: 1', '',
    ].join('\n'));
    ctlOk(join(dir, 'smmapd.conf'), ['mailbox', 'create', 'user/fred']);
    daemon = await startSmmapd({ conf: join(dir, 'smmapd.conf') });
  }, 240_000);

  afterAll(async () => {
    await daemon?.stop();
    if (my) await stopMysql(my);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('dbmail aliases: LIMIT 1 answers the alias once, as sockmapd does', async () => {
    const ours = await query(daemon.target, KEYS, 'recipient');
    expect(ours).toEqual(KEYS.map(sockmapdRecipient));
    expect(ours[KEYS.indexOf('team@example.com')]).toBe('OK team@example.com');
  });

  it('blackwhite: status and reason as sockmapd answered them (no trailing blank for an empty reason)', async () => {
    const ours = await query(daemon.target, KEYS, 'blacklist');
    KEYS.forEach((k, i) => {
      const theirs = sockmapdBlacklist(k);
      if (theirs !== null) expect(ours[i], k).toBe(theirs);
    });
    expect(ours[KEYS.indexOf('quiet.example')]).toBe('OK REJECT');
    // where sockmapd failed (a NULL reason), the status alone
    expect(ours[KEYS.indexOf('nulls.example')]).toBe('OK REJECT');
  });

  it('smmapd_verify_maps: listed names get the Cyrus verification, any other unconfigured name TEMP, logged', async () => {
    expect(await query(daemon.target, ['fred', 'nosuch'], 'smmapd')).toEqual(['OK fred', 'NOTFOUND Mailbox does not exist']);
    expect(await query(daemon.target, ['fred'], 'CYRUS')).toEqual(['OK fred']);
    expect(await query(daemon.target, ['fred', 'info@example.com'], 'recipients')).toEqual(['TEMP Map not configured', 'TEMP Map not configured']);
    // rate-limited: 3 lines for the name in a minute (per process; one worker here), however many requests
    await query(daemon.target, Array.from({ length: 10 }, () => 'fred'), 'recipients');
    await new Promise((r) => setTimeout(r, 300));
    const lines = daemon.output().split('\n').filter((l) => l.includes('map recipients is neither configured'));
    expect(lines.length).toBe(3);
  });
});
