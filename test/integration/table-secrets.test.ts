// A directory password others can read draws a warning (issue 13), as ssh warns for a key:
// at the daemon's start and in `smmapctl check-map`. No directory is needed: the file is
// judged when the map is opened (its host here refuses connections).
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runCtl, tempConfig } from '../helpers/base';
import { startSmmapd } from '../helpers/daemon';

describe('a table password group or others can read', () => {
  let env: ReturnType<typeof tempConfig>;
  let cf: string;
  let pwFile: string;
  let ldapCf: string;
  beforeAll(async () => {
    env = tempConfig('smmapd_workers: 1');
    const port = await freePort();
    cf = join(env.dir, 'aliases.cf');
    writeFileSync(cf, `hosts = inet:127.0.0.1:${port}\nuser = smmapd\npassword = s3cret\ndbname = x\nquery = SELECT '%s'\n`);
    chmodSync(cf, 0o644);
    pwFile = join(env.dir, 'ldap.secret');
    writeFileSync(pwFile, 's3cret\n');
    chmodSync(pwFile, 0o640);
    ldapCf = join(env.dir, 'people.cf');
    writeFileSync(ldapCf, `server_host = ldap://127.0.0.1:${port}\nbind_dn = cn=smmapd\nbind_pw_file = ${pwFile}\n`);
    writeFileSync(env.conf, `smmapd_map_aliases: pgsql:${cf}\nsmmapd_map_people: ldap:${ldapCf}\n`, { flag: 'a' });
  });
  afterAll(() => rmSync(env.dir, { recursive: true, force: true }));

  const warningOf = (name: string): string[] =>
    runCtl(env.conf, ['check-map', name]).stderr.split('\n').filter((l) => l.startsWith('smmapctl: warning:'));

  it('check-map says so, with the file, the line and the mode; not once the file is 0600', () => {
    expect(warningOf('aliases')).toEqual([`smmapctl: warning: ${cf}:3: password is set in a file group or others can read (mode 0644): chmod 600 ${cf} (readable by the user smmapd runs as), or use password_file`]);
    expect(warningOf('people')).toEqual([`smmapctl: warning: ${ldapCf}:3: bind_pw_file ${pwFile} can be read by group or others (mode 0640): chmod 600 ${pwFile} (readable by the user smmapd runs as)`]);
    chmodSync(cf, 0o600);
    chmodSync(pwFile, 0o600);
    try {
      expect(warningOf('aliases')).toEqual([]);
      expect(warningOf('people')).toEqual([]);
    } finally {
      chmodSync(cf, 0o644);
      chmodSync(pwFile, 0o640);
    }
  }, 60_000);

  it('the daemon says so at start, as a warning naming the map', async () => {
    const d = await startSmmapd({ conf: env.conf });
    try {
      expect(d.output()).toMatch(new RegExp(`warning: map aliases: ${cf}:3: password is set in a file group or others can read \\(mode 0644\\)`));
      expect(d.output()).toMatch(/warning: map people: .*bind_pw_file .* \(mode 0640\)/);
    } finally {
      await d.stop();
    }
  }, 60_000);
});
