// Stands in for the `bindings` package inside the bundles (scripts/bundle.js). better-sqlite3
// asks bindings for its native addon, and bindings finds it by walking up from a stack trace,
// which in a bundle starts at the wrong file; it also costs a few milliseconds per start.
'use strict';
const { dirname, join } = require('node:path');

module.exports = function bindings(name) {
  return require(join(dirname(require.resolve('better-sqlite3/package.json')), 'build', 'Release', name));
};
