// The stdio model under real super-servers: xinetd (conf/xinetd.d/smmapd), openbsd-inetd
// (conf/inetd.conf) and tcpserver (ucspi-tcp). xinetd and inetd also connect stderr to the
// client's socket, so exact answers prove nothing is ever logged there; a private syslog
// socket shows where the log goes instead.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { freePort, haveCommand, isRoot, killMatching, pidsMatching, SMMAPD, SMMAPD_COMMAND, waitFor } from '../helpers/base';
import { startSmmapd, type Smmapd } from '../helpers/daemon';
import { ANSWERS, EXAMPLE, makeFixture, readExample, substitute, type Fixture } from '../helpers/fixture';
import { gccAvailable, runLoad } from '../helpers/load';
import { describeWithPeer, firstMissing } from '../helpers/suite';
import { netstring, query, raw } from '../helpers/socketmap';
import { startSyslogReceiver } from '../helpers/syslog';

/**
 * openbsd-inetd conflicts with xinetd (both provide inet-superserver), so it is unpacked,
 * not installed (.ci/install-peers): INETD, or the unpacked copy, or an installed one.
 */
function inetdBinary(): string | null {
  for (const p of [process.env.INETD, '/var/cache/smmapd-test/inetd/root/usr/sbin/inetd', '/usr/sbin/inetd']) {
    if (p !== undefined && existsSync(p)) return p;
  }
  return null;
}

interface SuperServer {
  readonly name: string;
  readonly port: number;
  stop(): Promise<void>;
  output(): string;
}

const started: Smmapd[] = [];

/** The super-server's command line, ready when `port` accepts. */
async function run(supervisor: string[], port: number): Promise<Smmapd> {
  const x = await startSmmapd({ model: 'supervisor', supervisor, port });
  started.push(x);
  return x;
}

async function stopProc(x: Smmapd): Promise<void> {
  x.signal('SIGTERM');
  await waitFor(() => x.hasExited(), 5000);
}

/** xinetd in the foreground with the example service, on the test's port, as root. */
async function startXinetd(fx: Fixture, conf = fx.conf): Promise<SuperServer> {
  const port = await freePort();
  const file = join(fx.dir, `xinetd-${port}.conf`);
  const service = substitute(readExample('xinetd.d/smmapd'), [
    [/^(\s*server\s*=\s*)\/usr\/local\/bin\/smmapd$/m, `$1${process.execPath}`],
    [/^(\s*server_args\s*=\s*)-C \/etc\/smmapd\.conf$/m, `$1${SMMAPD} -C ${conf}`],
    [/^(\s*port\s*=\s*)12345$/m, `$1${port}`],
    [/^(\s*user\s*=\s*)smmapd$/m, '$1root'],
  ]);
  writeFileSync(file, `defaults\n{\n}\n${service}`);
  const x = await run(['xinetd', '-dontfork', '-f', file, '-pidfile', join(fx.dir, `xinetd-${port}.pid`)], port);
  return { name: 'xinetd', port, stop: () => stopProc(x), output: x.output };
}

/** openbsd-inetd in debug (foreground) mode with the example line. */
async function startInetd(fx: Fixture, conf = fx.conf): Promise<SuperServer> {
  const port = await freePort();
  const file = join(fx.dir, `inetd-${port}.conf`);
  const line = substitute(readExample('inetd.conf'), [
    [`${EXAMPLE.host}:${EXAMPLE.port}`, `127.0.0.1:${port}`],
    [/\tsmmapd\t/, '\troot\t'],
    [`${EXAMPLE.program}\tsmmapd -C ${EXAMPLE.config}`, `${process.execPath}\tnode ${SMMAPD} -C ${conf}`],
  ]);
  writeFileSync(file, line);
  const x = await run([inetdBinary()!, '-d', file], port);
  return { name: 'inetd', port, stop: () => stopProc(x), output: x.output };
}

/** tcpserver (ucspi-tcp): stdin/stdout are the socket; stderr stays tcpserver's. */
async function startTcpserver(fx: Fixture, conf = fx.conf): Promise<SuperServer> {
  const port = await freePort();
  const x = await run(['tcpserver', '-R', '-H', '-c', '40', '127.0.0.1', String(port), ...SMMAPD_COMMAND.split(' '), '-C', conf], port);
  return { name: 'tcpserver', port, stop: () => stopProc(x), output: x.output };
}

let fx: Fixture;
beforeAll(() => {
  fx = makeFixture();
});
afterEach(async () => {
  for (const p of started.splice(0)) await stopProc(p);
  await waitFor(() => pidsMatching(`${SMMAPD} -C ${fx.dir}`).length === 0, 3000);
  expect(killMatching(`${SMMAPD} -C ${fx.dir}`), 'smmapd processes left behind').toEqual([]);
});
afterAll(() => {
  rmSync(fx.dir, { recursive: true, force: true });
});

const servers: Array<{ name: string; missing: string | null; start: (fx: Fixture, conf?: string) => Promise<SuperServer> }> = [
  { name: 'xinetd (conf/xinetd.d/smmapd)', missing: firstMissing([[haveCommand('xinetd'), 'xinetd'], [isRoot(), 'root']]), start: startXinetd },
  { name: 'openbsd-inetd (conf/inetd.conf)', missing: firstMissing([[inetdBinary() !== null, 'inetd (openbsd-inetd, unpacked by .ci/install-peers)'], [isRoot(), 'root']]), start: startInetd },
  { name: 'tcpserver (ucspi-tcp)', missing: firstMissing([[haveCommand('tcpserver'), 'tcpserver (ucspi-tcp)']]), start: startTcpserver },
];

for (const s of servers) {
  describeWithPeer(s.name, s.missing ?? firstMissing([[gccAvailable(), 'gcc (for bench/smload.c)']]), () => {
    it('50 connections in a row, each answered byte for byte; no process left', async () => {
      const srv = await s.start(fx);
      const target = `127.0.0.1:${srv.port}`;
      for (let i = 0; i < 50; i++) {
        expect(await query(target, ANSWERS.map(([k]) => k)), `connection ${i}: ${srv.output()}`).toEqual(ANSWERS.map(([, r]) => r));
      }
      // pipelined requests in one write, and the protocol error that ends a connection
      const { data, closed } = await raw(target, Buffer.concat([netstring('m fred'), netstring('m nosuch'), Buffer.from('abc')]));
      expect(data.toString()).toBe('7:OK fred,31:NOTFOUND Mailbox does not exist,34:PERM Bad protocol (missing length),');
      expect(closed).toBe(true);
      await srv.stop();
    }, 60_000);

    it('concurrent clients, long-lived and reconnecting: no error', async () => {
      const srv = await s.start(fx);
      const target = `127.0.0.1:${srv.port}`;
      const steady = await runLoad(target, fx.keys, 4, 2);
      const churn = await runLoad(target, fx.keys, 4, 3, true);
      console.log(`${s.name}: 4 clients x 2 s: ${steady.line}`);
      console.log(`${s.name}: 4 reconnecting clients x 3 s: ${churn.line}`);
      for (const r of [steady, churn]) {
        expect(r.errors).toBe(0);
        expect(r.ok + r.notfound + r.temp).toBe(r.requests);
      }
      expect(churn.requests).toBeGreaterThan(0);
      await srv.stop();
    }, 60_000);
  });
}

describeWithPeer('inetd-style logging', firstMissing([[haveCommand('xinetd'), 'xinetd'], [isRoot(), 'root'], [haveCommand('logger'), 'logger (util-linux)']]), () => {
  it('under xinetd the log goes to syslog (a private socket here), never to the client; audit lines name outcome, key and client', async () => {
    const sock = join(fx.dir, 'log.sock');
    const rx = await startSyslogReceiver(sock);
    try {
      const conf = join(fx.dir, 'audit.conf');
      writeFileSync(conf, `configdirectory: ${fx.dir}\nsmmapd_store: ${fx.store}\nunixhierarchysep: no\nsmmapd_audit: yes\nsmmapd_syslog_socket: ${sock}\n`);
      const srv = await startXinetd(fx, conf);
      expect(await query(`127.0.0.1:${srv.port}`, ANSWERS.map(([k]) => k))).toEqual(ANSWERS.map(([, r]) => r));
      expect(await waitFor(() => rx.records().length >= 4, 5000)).toBe(true);
      const recs = rx.records();
      // facility mail (2), level notice (5): <21>; tagged smmapd[pid]
      expect(recs[0]).toMatch(/^<21>.* smmapd\[\d+\]: auditlog: ok userid=<fred> client=<127\.0\.0\.1:\d+>$/);
      expect(recs.some((r) => r.includes('auditlog: nonexistent userid=<nosuch>'))).toBe(true);
      expect(recs.some((r) => r.includes('auditlog: overquota userid=<full>'))).toBe(true);
      expect(recs.some((r) => r.includes('auditlog: failed userid=<+shared.nopost>'))).toBe(true);
      await srv.stop();
    } finally {
      await rx.stop();
    }
  }, 30_000);
});
