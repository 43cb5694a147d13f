// The systemd units of conf/systemd as a real systemd reads them: `systemd-analyze verify`
// finds nothing that would keep one from loading or starting (a socket whose Accept=yes
// template is missing, a command that does not exist), and an Accept=yes socket has the
// `<name>@.service` template systemd starts per connection.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { haveCommand, ROOT } from '../helpers/base';
import { unitValues } from '../helpers/fixture';
import { describeWithPeer, firstMissing } from '../helpers/suite';

const UNITS = join(ROOT, 'conf/systemd');
const units = readdirSync(UNITS).filter((f) => /\.(socket|service)$/.test(f));
const dir = mkdtempSync(join(tmpdir(), 'smmapd-units-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeWithPeer('conf/systemd as systemd reads it', firstMissing([[haveCommand('systemd-analyze'), 'systemd-analyze']]), () => {
  it('has units to check', () => {
    expect(units).toEqual(expect.arrayContaining(['smmapd.socket', 'smmapd.service', 'smmapd-accept.socket', 'smmapd-accept@.service']));
  });

  for (const unit of units) {
    it(`systemd-analyze verify ${unit}: loads, and each socket can start its service`, () => {
      // verify resolves the units a socket names next to the file given
      for (const u of units) copyFileSync(join(UNITS, u), join(dir, u));
      const r = spawnSync('systemd-analyze', ['verify', `./${unit}`], { cwd: dir, encoding: 'utf8' });
      const out = `${r.stdout}${r.stderr}`;
      expect(out).not.toMatch(/not loaded|not found|cannot be started|not executable|No such file/i);
    });
  }

  it('every Accept=yes socket has the NAME@.service template systemd starts per connection', () => {
    for (const unit of units.filter((u) => u.endsWith('.socket'))) {
      const v = unitValues(readFileSync(join(UNITS, unit), 'utf8'));
      const service = v.get('Service')?.[0];
      if (v.get('Accept')?.[0] === 'yes') expect(units, unit).toContain(service ?? unit.replace(/\.socket$/, '@.service'));
      else expect(units, unit).toContain(service ?? unit.replace(/\.socket$/, '.service'));
    }
  });

  it('the ExecStart commands need no install path: smmapd is looked up on systemd\'s PATH', () => {
    for (const unit of units.filter((u) => u.endsWith('.service'))) {
      const exec = unitValues(readFileSync(join(UNITS, unit), 'utf8')).get('ExecStart')?.[0] ?? '';
      expect(exec, unit).toMatch(/^\/usr\/bin\/env smmapd /);
    }
  });
});
