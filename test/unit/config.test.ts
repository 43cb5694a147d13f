import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, configFromText, loadConfig } from '../../src/config';
import { makeLogger } from '../../src/log';
import { Service } from '../../src/server/service';

describe('configuration', () => {
  it('takes Cyrus defaults and ignores options it does not know', () => {
    const c = configFromText('# an imapd.conf\nadmins: cyrus\nsasl_pwcheck_method: saslauthd\n');
    expect(c.unixhierarchysep).toBe(true);
    expect(c.lmtpDowncaseRcpt).toBe(true);
    expect(c.virtdomains).toBe('off');
    expect(c.maxRequest).toBe(10_000);
    expect(c.timeout).toBe(360);
  });

  it('deny-list service name: smmapd, under Cyrus master the cyrus.conf name, unless smmapd_service_name is set', () => {
    const saved = process.env.CYRUS_SERVICE;
    try {
      delete process.env.CYRUS_SERVICE;
      expect(configFromText('').serviceName).toBe('smmapd');
      process.env.CYRUS_SERVICE = 'smmap';
      expect(configFromText('').serviceName).toBe('smmap');
      expect(configFromText('smmapd_service_name: verify\n').serviceName).toBe('verify');
    } finally {
      if (saved === undefined) delete process.env.CYRUS_SERVICE;
      else process.env.CYRUS_SERVICE = saved;
    }
  });

  it('names the file and line of a bad value', () => {
    expect(() => configFromText('virtdomains: maybe\n', '/etc/smmapd.conf')).toThrow(/^\/etc\/smmapd.conf:1: virtdomains/);
    expect(() => configFromText('a line without a colon\n', 'x.conf')).toThrow(ConfigError);
    expect(() => configFromText('postuser: a\n# x\npostuser: b\n', 'x.conf')).toThrow('x.conf:3: postuser was already set on line 1');
  });

  it('keeps smmapd_max_request where no reply can exceed 100,000 bytes (behaviour §1)', () => {
    expect(configFromText('smmapd_max_request: 99997\n').maxRequest).toBe(99_997);
    expect(() => configFromText('smmapd_max_request: 99998\n')).toThrow(/smmapd_max_request/);
  });
});

describe('SIGHUP reload', () => {
  it('a reload that fails changes nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'smmapd-reload-'));
    const file = join(dir, 'smmapd.conf');
    writeFileSync(file, `smmapd_store: ${join(dir, 's.db')}\nsmmapd_max_connections: 10\n`);
    const log = makeLogger('error', { write: () => undefined });
    const service = new Service(loadConfig(file), { configPath: file, skipPlus: false }, log);
    // a config that parses but whose store cannot open: the CA file is missing
    writeFileSync(file, 'smmapd_backend: imap\nsmmapd_imap_server: 127.0.0.1:1\nsmmapd_imap_tls: tls\n' +
      `smmapd_imap_ca_file: ${join(dir, 'missing-ca.pem')}\nsmmapd_max_connections: 99\n`);
    expect(() => service.reload()).toThrow();
    expect(service.cfg.backend).toBe('sqlite');
    expect(service.cfg.maxConnections).toBe(10);
  });
});
