// What a process per connection pays (README, Performance, "Start-up"): package.json's bin
// runs one bundle per program (scripts/bundle.js), smmapd from V8's code cache, and the stdio
// model loads no package and no Node module that its first answer does not need.
import { spawnSync } from 'node:child_process';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, ctlBatch, ROOT, SMMAPCTL, SMMAPD, tempConfig } from '../helpers/base';

describe('start-up of the built programs', () => {
  let env: ReturnType<typeof tempConfig>;
  beforeAll(() => {
    buildOnce();
    env = tempConfig('unixhierarchysep: no');
    ctlBatch(env.conf, ['mailbox create user.fred']);
  });
  afterAll(() => rmSync(env.dir, { recursive: true, force: true }));

  it('bin names the files the build wrote, executable', () => {
    const bin = (require(join(ROOT, 'package.json')) as { bin: Record<string, string> }).bin;
    expect(Object.keys(bin).sort()).toEqual(['smmapctl', 'smmapd']);
    for (const p of [SMMAPD, SMMAPCTL]) expect(statSync(p).mode & 0o111).not.toBe(0);
  });

  it('smmapd runs its bundle from a code cache that this Node accepts', () => {
    // Asked of a plain node, as the entry runs (the test runner's V8 flags may differ).
    const bundle = join(dirname(SMMAPD), 'smmapd.bundle.js');
    const probe = `
      const fs = require('node:fs'), M = require('node:module'), { Script } = require('node:vm');
      const f = ${JSON.stringify(bundle)};
      const s = new Script(M.wrap(fs.readFileSync(f, 'utf8').replace(/^#!.*/, '')), { filename: f, cachedData: fs.readFileSync(f + '.cache') });
      process.stdout.write(String(s.cachedDataRejected));`;
    const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('false');
  });

  it('the stdio model loads SQLite and no other package, nor node:cluster or node:child_process', () => {
    const preload = join(env.dir, 'record-loads.js');
    writeFileSync(preload, `
      const M = require('node:module'); const load = M._load; const seen = new Set();
      M._load = function (request) { seen.add(request); return load.apply(this, arguments); };
      process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify([...seen]) + '\\n'));`);
    const r = spawnSync(process.execPath, ['-r', preload, SMMAPD, '-C', env.conf], { input: '8:any fred,', encoding: 'utf8', timeout: 10_000 });
    expect(r.stdout).toBe('7:OK fred,');
    const loaded = JSON.parse(/^LOADED (.*)$/m.exec(r.stderr)?.[1] ?? '[]') as string[];
    expect(loaded.some((m) => m.endsWith('better_sqlite3.node'))).toBe(true);
    const heavy = /^(node:)?(cluster|child_process)$|^(imapflow|pg|mysql2|ldapts|commander|bindings|prom-client)(\/|$)/;
    expect(loaded.filter((m) => heavy.test(m))).toEqual([]);
    // one bundle: nothing of ours or better-sqlite3's is resolved file by file
    expect(loaded.filter((m) => m.startsWith('.') || m.startsWith('better-sqlite3'))).toEqual([]);
  });
});
