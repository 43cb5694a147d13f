#!/usr/bin/env node
// /usr/share/doc/smmapd/copyright (machine-readable format) for scripts/deb/build.sh: our
// licence, then one paragraph per package shipped under /usr/lib/smmapd/node_modules (the
// directories given as arguments) with its copyright lines and licence text, which the
// package's own LICENSE files then need not ship.
'use strict';
const { readdirSync, readFileSync } = require('node:fs');
const { join, resolve } = require('node:path');

const ROOT = resolve(__dirname, '../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

/** A DEP-5 multi-line value: each line indented, blank lines as " .". */
const block = (text) => text.replace(/\r/g, '').replace(/\t/g, '    ').trim().split('\n').map((l) => (l.trim() === '' ? ' .' : ` ${l.trimEnd()}`)).join('\n');

const LICENSE_FILE = /^(licen[cs]e|copying)(\.(md|txt|mit))?$/i;
const licenseFiles = (dir) => readdirSync(dir).filter((f) => LICENSE_FILE.test(f) || /^licen[cs]e\./i.test(f)).sort();

/** The holders a licence text names ("Copyright (c) 2019 Name"), else the fallback. */
function copyrightLines(text, fallback) {
  const notice = /^(copyright\s*(\(c\)|©)?|\(c\)|©)\s*(\d{4}|(?<=(\(c\)|©)\s*)[A-Z])/i;
  const lines = [...new Set(text.split('\n').map((l) => l.trim()).filter((l) => notice.test(l)))];
  return lines.length > 0 ? lines.map((l) => l.replace(/^(copyright\s*)?(\(c\)|©)?\s*/i, '')) : [fallback];
}

function authorOf(p) {
  const a = p.author;
  return typeof a === 'string' ? a : a?.name ?? `the ${p.name} authors`;
}

/** Licences named by packages that ship no text of their own. */
const GENERIC = {
  MIT: `Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.`,
  ISC: `Permission to use, copy, modify, and/or distribute this software for any purpose with or
without fee is hereby granted, provided that the above copyright notice and this permission
notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH REGARD TO THIS
SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL
THE AUTHOR BE LIABLE FOR ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY
DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF
CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE USE
OR PERFORMANCE OF THIS SOFTWARE.`,
};
const APACHE = 'On Debian systems the full text of the Apache License 2.0 is in\n/usr/share/common-licenses/Apache-2.0.';

const out = [];
const own = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
out.push(`Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ${pkg.name}
Comment: Built by \`npm run package\` (scripts/deb/build.sh) from the upstream tree. The
 programs in usr/lib/smmapd/dist are bundles (scripts/bundle.js) that also hold
 better-sqlite3's JavaScript, whose licence is given below with its native addon.

Files: *
Copyright: ${copyrightLines(own, 'the smmapd authors').join('\n           ')}
License: ${pkg.license}
${block(own)}`);

const used = new Set();
for (const dir of process.argv.slice(2)) {
  const p = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8'));
  // DEP-5 writes an SPDX "(A OR B)" as "A or B"
  const spdx = typeof p.license === 'string' ? p.license.replace(/^\((.*)\)$/, '$1').replace(/ OR /g, ' or ') : 'unknown';
  let files = licenseFiles(join(ROOT, dir));
  // dual-licensed with MIT (mailsplit: MIT or EUPL): the MIT text is the one we go by
  if (/\bor\b/.test(spdx) && files.some((f) => /mit/i.test(f))) files = files.filter((f) => /mit/i.test(f));
  const texts = files.map((f) => readFileSync(join(ROOT, dir, f), 'utf8'));
  // Apache's text is the licence's own boilerplate: the holder is the package's author
  const holders = spdx === 'Apache-2.0' ? [authorOf(p)] : copyrightLines(texts.join('\n'), authorOf(p));
  let para = `Files: usr/lib/smmapd/${dir}/*\nCopyright: ${holders.join('\n           ')}\nLicense: ${spdx}`;
  if (spdx === 'Apache-2.0') para += `\n${block(APACHE)}`;
  else if (texts.length > 0) para += `\n${block(texts.join('\n\n'))}`;
  else {
    para += `\nComment: ${p.name} ${p.version} ships no licence text; its package.json names ${spdx}.`;
    used.add(spdx);
  }
  out.push(para);
}
for (const l of used) {
  if (GENERIC[l] === undefined) throw new Error(`copyright.js: no text for licence ${l}`);
  out.push(`License: ${l}\n${block(GENERIC[l])}`);
}
process.stdout.write(`${out.join('\n\n')}\n`);
