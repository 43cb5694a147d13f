// Where the log goes and what it says, in each process model: stderr (plain, or with `<N>`
// priorities when it is journald's stream), a file (smmapd_log), syslog through a `logger`
// child (Cyrus master, inetd; a private socket here, this machine has no /dev/log). Audit
// lines (smmapd_audit) follow Cyrus's auditlog and ignore smmapd_log_level; errors are
// always logged; SIGHUP applies a new level.
import { once } from 'node:events';
import { closeSync, fstatSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, haveCommand, killMatching, sleep, SMMAPD, waitFor } from '../helpers/base';
import { makeFixture, type Fixture } from '../helpers/fixture';
import { describeWithPeer, firstMissing } from '../helpers/suite';
import { netstring, query, raw } from '../helpers/socketmap';
import { startSyslogReceiver } from '../helpers/syslog';
import { startSmmapd } from '../helpers/daemon';
import { fakeMaster } from '../helpers/master';

let fx: Fixture;
beforeAll(() => {
  fx = makeFixture();
});
afterEach(async () => {
  await sleep(100);
  expect(killMatching(`${SMMAPD} -C ${fx.dir}`), 'smmapd processes left behind').toEqual([]);
});
afterAll(() => {
  rmSync(fx.dir, { recursive: true, force: true });
});

let n = 0;
/** A config on the fixture's store; `extra` may name another store (options may not repeat). */
function conf(extra: string): string {
  const c = join(fx.dir, `log-${++n}.conf`);
  const store = extra.includes('smmapd_store:') ? '' : `smmapd_store: ${fx.store}\n`;
  writeFileSync(c, `configdirectory: ${fx.dir}\n${store}unixhierarchysep: no\nsmmapd_workers: 1\n${extra}\n`);
  return c;
}

/** A --listen daemon whose stderr is a file; env extra; resolves once it listens. */
async function listenerWithStderrFile(c: string, env: NodeJS.ProcessEnv = {}, journal = false) {
  const port = await freePort();
  const errFile = join(fx.dir, `stderr-${++n}.txt`);
  const fd = openSync(errFile, 'w');
  const st = fstatSync(fd);
  const extraEnv = journal ? { JOURNAL_STREAM: `${st.dev}:${st.ino}` } : {};
  // Logging elsewhere (smmapd_log): wait for the port instead (no -U/-T here: a probe is harmless).
  const ready = readFileSync(c, 'utf8').includes('smmapd_log:') ? 'port' : 'log';
  try {
    const d = await startSmmapd({ conf: c, listen: [`inet:127.0.0.1:${port}`], stdio: ['ignore', 'ignore', fd], stderrFile: errFile, env: { ...extraEnv, ...env }, ready });
    return Object.assign(d, { text: d.output });
  } finally {
    closeSync(fd);
  }
}

describe('stderr and files', () => {
  it('--listen logs to stderr, `smmapd[pid]: level: text`; audit lines as Cyrus writes them', async () => {
    const d = await listenerWithStderrFile(conf('smmapd_audit: yes'));
    expect(await query(d.target, ['fred', 'nosuch', 'full', '+shared.nopost', 'bad\x01key'])).toHaveLength(5);
    await raw(d.target, Buffer.from('abc'));
    expect(await d.stop()).toBe(0);
    const t = d.text();
    const pid = d.proc.pid;
    expect(t).toContain(`smmapd[${pid}]: notice: listening on inet:127.0.0.1:`);
    expect(t).toMatch(new RegExp(`smmapd\\[${pid}\\]: notice: auditlog: ok userid=<fred> client=<127\\.0\\.0\\.1:\\d+>`));
    expect(t).toContain('auditlog: nonexistent userid=<nosuch>');
    expect(t).toContain('auditlog: overquota userid=<full>');
    expect(t).toContain('auditlog: failed userid=<+shared.nopost>');
    // control characters never reach the log as they are
    expect(t).toContain('auditlog: nonexistent userid=<bad\\x01key>');
    expect(t).toContain('auditlog: failed userid=<> client=<');
    expect(t).toContain('protocol error from 127.0.0.1:');
    expect(t).toContain('shutting down: SIGTERM');
  });

  it('under journald (JOURNAL_STREAM names stderr): `<N>` syslog priorities, no prefix of our own', async () => {
    const d = await listenerWithStderrFile(conf('smmapd_audit: yes\nsmmapd_audit_level: info'), {}, true);
    await query(d.target, ['fred']);
    expect(await d.stop()).toBe(0);
    const lines = d.text().trim().split('\n');
    expect(lines).toContain('<5>listening on inet:127.0.0.1:' + d.target.split(':')[1]);
    expect(lines.some((l) => /^<6>auditlog: ok userid=<fred> client=<127\.0\.0\.1:\d+>$/.test(l))).toBe(true);
    expect(lines.every((l) => /^<\d>/.test(l))).toBe(true);
  });

  it('JOURNAL_STREAM inherited but stderr is elsewhere: plain lines', async () => {
    const d = await listenerWithStderrFile(conf(''), { JOURNAL_STREAM: '1:2' });
    expect(await d.stop()).toBe(0);
    expect(d.text()).toMatch(/^smmapd\[\d+\]: notice: listening on/m);
  });

  it('smmapd_log: FILE; smmapd_log_level: error still logs errors and audit lines, not notices; SIGHUP applies a new level', async () => {
    const logFile = join(fx.dir, 'smmapd.log');
    const c = conf(`smmapd_log: ${logFile}\nsmmapd_log_level: error\nsmmapd_audit: yes`);
    const d = await listenerWithStderrFile(c);
    await query(d.target, ['fred']);
    await raw(d.target, Buffer.from('abc')); // a protocol error: notice
    // a store that cannot be opened: an error, whatever the level
    writeFileSync(c, `configdirectory: ${fx.dir}\nsmmapd_store: ${fx.dir}/missing/x.db\nunixhierarchysep: no\nsmmapd_workers: 1\nsmmapd_log: ${logFile}\nsmmapd_log_level: info\nsmmapd_audit: no\n`);
    d.proc.kill('SIGHUP');
    await waitFor(() => readFileSync(logFile, 'utf8').includes('reloaded'), 5000);
    expect(await query(d.target, ['fred'])).toEqual(['TEMP store unavailable']);
    expect(await d.stop()).toBe(0);
    const t = readFileSync(logFile, 'utf8');
    expect(t).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z smmapd\[\d+\]: notice: auditlog: ok userid=<fred> client=</m);
    expect(t).not.toContain('listening on'); // notice, below the first threshold
    expect(t).not.toContain('protocol error from');
    expect(t).toContain('notice: reloaded'); // after SIGHUP: info threshold
    expect(t).toMatch(/error: store unavailable: .*missing\/x\.db/);
    expect(t).toContain('auditlog: failed userid=<> client=<'); // the protocol error
    expect(t.match(/auditlog:/g)).toHaveLength(2); // and no more: audit off after the reload
    expect(d.text()).toBe(''); // nothing on stderr
  });
});

describeWithPeer('syslog through logger(1)', firstMissing([[haveCommand('logger'), 'logger (util-linux)'], [haveCommand('python3'), 'python3']]), () => {
  it('under Cyrus master (stand-in): syslog by default, tagged with the service name, facility from syslog_facility', async () => {
    const sock = join(fx.dir, 'master-log.sock');
    const rx = await startSyslogReceiver(sock);
    try {
      const c = conf(`smmapd_audit: yes\nsmmapd_syslog_socket: ${sock}\nsyslog_facility: LOCAL6\nsmmapd_log_level: debug`);
      const run = fakeMaster('uses', [process.execPath, SMMAPD, '-C', c, '-U', '3', '-T', '0']);
      expect(run.exit).toBe(0);
      expect(run.stderr).toBe(''); // nothing on stderr: that is master -L's file, or /dev/null
      expect(await waitFor(() => rx.records().filter((l) => l.includes('auditlog:')).length >= 3, 5000)).toBe(true);
      const recs = rx.records();
      // local6 = 22: notice = 22*8+5 = 181, debug = 183; ident = CYRUS_SERVICE, pid = the worker's
      expect(recs.filter((l) => l.startsWith('<181>') && l.includes(` smmap[${run.pid}]: auditlog: ok userid=<fred> client=<127.0.0.1:`))).toHaveLength(3);
      expect(recs.some((l) => l.startsWith('<183>') && l.includes('accepted connection from'))).toBe(true);
      // the worker's last line (its exit) made it out although it exited right after writing it
      expect(recs.some((l) => l.includes('exiting: served 3 connection(s)'))).toBe(true);
    } finally {
      await rx.stop();
    }
  });

  it('stdio (inetd) with stderr on the client socket: errors go to syslog, the client gets only its answer', async () => {
    const sock = join(fx.dir, 'stdio-log.sock');
    const rx = await startSyslogReceiver(sock);
    try {
      const c = conf(`smmapd_syslog_socket: ${sock}\nsmmapd_store: ${fx.dir}/missing/y.db`);
      // inetd's arrangement: one socket on 0, 1 and 2 (the accepted end of a unix socket,
      // never read here: pauseOnConnect)
      const path = join(fx.dir, 'stdio-client.sock');
      const srv = net.createServer({ pauseOnConnect: true }).listen(path);
      await once(srv, 'listening');
      const client = net.connect(path);
      const [peer] = (await once(srv, 'connection')) as [net.Socket];
      const d = await startSmmapd({ model: 'stdio', conf: c, stdio: [peer, peer, peer] });
      peer.destroy();
      srv.close();
      let reply = '';
      client.on('data', (b: Buffer) => (reply += b.toString()));
      client.end(netstring('m fred'));
      await Promise.all([once(client, 'close'), d.exited()]);
      expect(reply).toBe('22:TEMP store unavailable,'); // the path is in the log, not the reply
      expect(await waitFor(() => rx.records().some((l) => l.includes('error') || l.includes('store unavailable')), 5000)).toBe(true);
      expect(rx.records().some((l) => /^<19>.* smmapd\[\d+\]: store unavailable: /.test(l))).toBe(true); // mail.err
    } finally {
      await rx.stop();
    }
  });
});
