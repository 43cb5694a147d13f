#!/usr/bin/env node
// npm run build, second step (after tsc): one bundled file per program, which is what
// package.json's bin runs. In the inetd and systemd Accept=yes models every connection pays
// Node's start-up, and resolving, reading and compiling some 40 modules one by one was most
// of what smmapd added to a bare `node` (README, Performance).
//
// - dist/cli/smmapctl.js: the bundle itself.
// - dist/cli/smmapd.js: a small entry (code-cache-entry.js) that runs dist/cli/smmapd.bundle.js
//   from V8's code cache, dist/cli/smmapd.bundle.js.cache, written here by one warm-up lookup
//   in the stdio model.
// - Our sources and better-sqlite3's JavaScript are bundled; its native addon is loaded by
//   path (bindings-shim.js). Every other package stays external: imapflow and the directory
//   drivers are required only when a configuration names them, and esbuild keeps a lazy
//   require() of our own modules lazy (a wrapper evaluated on first use).
// - tsc still compiles every module to dist/ (the type check, and what bench/ imports); it
//   writes dist/cli/smmapd.js and smmapctl.js too, which this step then replaces.
'use strict';
const { buildSync } = require('esbuild');
const { spawnSync } = require('node:child_process');
const { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join, resolve } = require('node:path');

const ROOT = resolve(__dirname, '..');
const CLI = join(ROOT, 'dist/cli');
const pkg = require(join(ROOT, 'package.json'));
const BUNDLED = new Set(['better-sqlite3']);
const external = Object.keys(pkg.dependencies ?? {}).filter((d) => !BUNDLED.has(d));

function bundle(program, outfile) {
  buildSync({
    absWorkingDir: ROOT,
    entryPoints: [join(ROOT, 'src/cli', `${program}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // every other package, and its subpaths (pg/lib/..., mysql2/promise), stays a require()
    external: [...external.flatMap((d) => [d, `${d}/*`]), 'better-sqlite3/package.json'],
    alias: { bindings: './scripts/bindings-shim.js' },
    logLevel: 'warning',
    legalComments: 'none',
  });
  chmodSync(outfile, 0o755);
}

function entry(program, bundleName) {
  const out = join(CLI, `${program}.js`);
  const text = readFileSync(join(__dirname, 'code-cache-entry.js'), 'utf8')
    .replaceAll('__PROGRAM__', program)
    .replaceAll('__BUNDLE__', bundleName);
  writeFileSync(out, text);
  chmodSync(out, 0o755);
}

/** One stdio-model session over a small store: the code it runs goes into the cache. */
function warmCodeCache(bundleFile) {
  const dir = mkdtempSync(join(tmpdir(), 'smmapd-build-'));
  try {
    const conf = join(dir, 'smmapd.conf');
    writeFileSync(conf, `configdirectory: ${dir}\nsmmapd_store: ${join(dir, 'smmapd.db')}\nsmmapd_log: ${join(dir, 'log')}\n`);
    const batch = ['mailbox create user/fred', 'mailbox create user/fred/sub', 'mailbox create user/full',
      'quota set user/full --storage 1', 'quota usage user/full --storage 4096', 'mailbox create shared/pub', 'acl set shared/pub anyone lrsp'];
    const ctl = spawnSync(process.execPath, [join(CLI, 'smmapctl.js'), '-C', conf, 'batch'], { input: `${batch.join('\n')}\n`, encoding: 'utf8' });
    if (ctl.status !== 0) throw new Error(`warm-up store: ${ctl.stderr}`);
    const keys = ['fred', 'fred+sub', 'Fred@example.com', 'nosuch', 'full', '+shared/pub'];
    const input = keys.map((k) => `${Buffer.byteLength(k) + 7}:smmapd ${k},`).join('');
    const r = spawnSync(process.execPath, [join(CLI, 'smmapd.js'), '-C', conf], {
      input, encoding: 'utf8', timeout: 60_000, env: { ...process.env, SMMAPD_WRITE_CODE_CACHE: bundleFile },
    });
    if (r.status !== 0 || !r.stdout.startsWith('7:OK fred,')) {
      throw new Error(`warm-up lookup failed (${r.status}): ${r.stdout} ${r.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

bundle('smmapctl', join(CLI, 'smmapctl.js'));
const smmapdBundle = join(CLI, 'smmapd.bundle.js');
rmSync(`${smmapdBundle}.cache`, { force: true }); // never a cache of another build
bundle('smmapd', smmapdBundle);
entry('smmapd', 'smmapd.bundle.js');
try {
  warmCodeCache(smmapdBundle);
} catch (e) {
  // The cache only saves time: without it smmapd compiles its bundle as usual.
  rmSync(`${smmapdBundle}.cache`, { force: true });
  console.warn(`scripts/bundle.js: no code cache for smmapd: ${e.message}`);
}
// The build is complete: test/helpers/base.ts buildOnce() rebuilds only a dist older than
// src, and a rebuild inside a test worker (spawnSync, a minute under load) starves vitest's
// worker channel ("Timeout calling onTaskUpdate"), so `npm run build` says it is fresh.
writeFileSync(join(ROOT, 'dist/.build-stamp'), new Date().toISOString());
