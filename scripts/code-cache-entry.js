#!/usr/bin/env node
// Entry of __PROGRAM__ (written by scripts/bundle.js; package.json's bin). Runs the bundle
// beside it from V8's code cache when the cache matches, so that a process per connection
// (inetd, systemd Accept=yes) does not compile the program again each time. Without a cache,
// or with one V8 rejects (another Node version, other V8 flags), the bundle compiles as usual.
'use strict';
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const { join } = require('node:path');
const { Script } = require('node:vm');

const file = join(__dirname, '__BUNDLE__');
let cachedData;
try {
  cachedData = readFileSync(`${file}.cache`);
} catch {
  cachedData = undefined;
}
const script = new Script(Module.wrap(readFileSync(file, 'utf8').replace(/^#!.*/, '')), { filename: file, cachedData });
// `npm run build` runs one stdio lookup with this set, to write the cache the lookup warmed.
if (process.env.SMMAPD_WRITE_CODE_CACHE === file) {
  process.once('exit', () => {
    writeFileSync(`${file}.cache.tmp`, script.createCachedData());
    renameSync(`${file}.cache.tmp`, `${file}.cache`);
  });
}
const bundle = new Module(file, module);
bundle.filename = file;
bundle.paths = Module._nodeModulePaths(__dirname);
script.runInThisContext()(bundle.exports, Module.createRequire(file), bundle, file, __dirname);
