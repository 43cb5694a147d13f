// The live store and sync over TLS to a real Cyrus: STARTTLS and implicit TLS, verified with
// smmapd_imap_ca_file; a certificate the CA file does not vouch for is never talked to (TEMP).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ADMIN, cyrusAvailable, populate, startCyrus, type Cyrus } from '../helpers/cyrus';
import { buildOnce, ctlOk, runCtl } from '../helpers/base';
import { startSmmapd } from '../helpers/daemon';
import { query } from '../helpers/socketmap';
import { describeWithPeer } from '../helpers/suite';

describeWithPeer('IMAP over TLS', cyrusAvailable() ? null : 'Cyrus 3.6 (cyrus-imapd, as root)', () => {
  let cy: Cyrus;
  let dir: string;

  beforeAll(async () => {
    buildOnce();
    dir = mkdtempSync(join(tmpdir(), 'smmapd-tls-'));
    cy = await startCyrus({ unixhierarchysep: false, tls: true });
    populate(cy, [{ create: 'user.fred' }]);
  }, 60_000);

  afterAll(async () => {
    await cy?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function conf(name: string, lines: string[]): string {
    const file = join(dir, `${name}.conf`);
    writeFileSync(file, [
      readFileSync(cy.conf, 'utf8'),
      `smmapd_store: ${join(dir, `${name}.db`)}`,
      `smmapd_imap_user: ${ADMIN.user}`,
      `smmapd_imap_password: ${ADMIN.password}`,
      'smmapd_imap_timeout: 3',
      'smmapd_workers: 1',
      ...lines,
    ].join('\n') + '\n');
    return file;
  }

  async function ask(file: string, keys: string[]): Promise<string[]> {
    const d = await startSmmapd({ conf: file });
    try {
      return await query(d.target, keys);
    } finally {
      await d.stop();
    }
  }

  const live = (server: string, tls: string, ca: boolean): string[] => [
    'smmapd_backend: imap', `smmapd_imap_server: ${server}`, `smmapd_imap_tls: ${tls}`, ...(ca ? [`smmapd_imap_ca_file: ${cy.caFile}`] : []),
  ];

  it('STARTTLS, verified with the CA file', async () => {
    expect(await ask(conf('starttls', live(`127.0.0.1:${cy.imapPort}`, 'starttls', true)), ['fred', 'nosuch']))
      .toEqual(['OK fred', 'NOTFOUND Mailbox does not exist']);
  });

  it('implicit TLS, verified with the CA file, by host name', async () => {
    expect(await ask(conf('tls', live(`localhost:${cy.imapsPort}`, 'tls', true)), ['fred'])).toEqual(['OK fred']);
  });

  it('a certificate the trusted CAs do not vouch for: TEMP, never an answer', async () => {
    const [r] = await ask(conf('untrusted', live(`127.0.0.1:${cy.imapsPort}`, 'tls', false)), ['fred']);
    expect(r).toMatch(/^TEMP /);
  });

  it('sync over STARTTLS', () => {
    const file = conf('sync', live(`127.0.0.1:${cy.imapPort}`, 'starttls', true).slice(1));
    expect(ctlOk(file, ['sync']).join('\n')).toMatch(/^synced 1 mailboxes, 0 quota roots, 1 ACLs in /);
  });

  it('sync fails (non-zero, store untouched) when it cannot log in', () => {
    const file = conf('syncbad', [`smmapd_imap_server: 127.0.0.1:${cy.imapsPort}`, 'smmapd_imap_tls: tls']);
    const r = runCtl(file, ['sync']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/IMAP/);
  });
});
