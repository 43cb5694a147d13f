#!/usr/bin/env node
// The packages the built programs require at run time, as directories under the project's
// node_modules, one per line, for scripts/deb/build.sh. The bundles (scripts/bundle.js) carry
// our code and better-sqlite3's JavaScript; what stays outside is every other dependency and
// what each of them depends on, found as Node would find it (node_modules of the requiring
// package, then of each directory above). better-sqlite3 itself is listed too: build.sh
// copies only its package.json and native addon. Its own dependencies (bindings,
// prebuild-install) serve its installation, not its use, and are left out.
'use strict';
const { existsSync, readFileSync } = require('node:fs');
const { dirname, join, relative, resolve } = require('node:path');

const ROOT = resolve(__dirname, '../..');
const BUNDLED = 'better-sqlite3';

function locate(name, fromDir) {
  for (let d = fromDir; ; d = dirname(d)) {
    const p = join(d, 'node_modules', name);
    if (existsSync(join(p, 'package.json'))) return p;
    if (d === ROOT || dirname(d) === d) return null;
  }
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const found = new Set();
const queue = Object.keys(pkg.dependencies ?? {}).map((n) => [n, ROOT]);
while (queue.length > 0) {
  const [name, from] = queue.shift();
  const dir = locate(name, from);
  if (dir === null) {
    // an optional dependency this platform did not install
    continue;
  }
  if (found.has(dir)) continue;
  found.add(dir);
  if (name === BUNDLED) continue;
  const p = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  for (const d of Object.keys({ ...p.dependencies, ...p.optionalDependencies })) queue.push([d, dir]);
}
for (const dir of [...found].sort()) process.stdout.write(`${relative(ROOT, dir)}\n`);
