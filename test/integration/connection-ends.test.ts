// Where a connection ends (issue 13): a client refused for a malformed request that then
// sends more and closes, or resets, or keeps its end open, must cost the daemon nothing
// once it is gone. Counted as the daemon's descriptors in /proc, on the real daemon, over
// both protocols; before the fix every such client held a descriptor for ever and 100 of
// them locked everyone out (TEMP Too many connections). Also: a client that resets before
// it is accepted is named `[unknown]`, not `[local]`.
import { readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctlBatch, sleep, tempConfig, waitFor } from '../helpers/base';
import { startSmmapd, type Smmapd } from '../helpers/daemon';
import { policyQuery } from '../helpers/policy';
import { query } from '../helpers/socketmap';

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

type Ending = 'fin' | 'rst' | 'open';

/**
 * One hostile client: `bad` (refused), wait for our FIN, one more byte, then close (FIN) or
 * reset; or keep its end open (resolved then, its socket kept in `open` for the caller).
 */
function refuseThenClose(port: number, bad: string, ending: Ending, open: net.Socket[]): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let got = '';
    const t = setTimeout(() => (sock.destroy(), resolve(`${got}<not closed>`)), 10_000);
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
    sock.once('connect', () => sock.write(bad));
    sock.once('end', () => {
      sock.write('x');
      if (ending === 'fin') sock.end();
      else if (ending === 'rst') sock.resetAndDestroy();
      else {
        open.push(sock);
        clearTimeout(t);
        resolve(got);
      }
    });
    sock.once('close', () => {
      clearTimeout(t);
      resolve(got);
    });
  });
}

async function inBatches(n: number, batch: number, one: (i: number) => Promise<string>): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i += batch) out.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => one(i + j)))));
  return out;
}

const ENDINGS: Ending[] = ['fin', 'rst', 'open'];

describe.each([
  { proto: 'socketmap', args: [] as string[], bad: 'abc', reply: '34:PERM Bad protocol (missing length),' },
  { proto: 'policy', args: ['--policy'], bad: 'request=smtpd_access_policy\nhello\n', reply: '' },
])('$proto: refused clients', ({ proto, args, bad, reply }) => {
  let env: ReturnType<typeof tempConfig>;
  let d: Smmapd;
  const serves = async (): Promise<void> => {
    if (proto === 'policy') expect((await policyQuery(d.port, [{ recipient: 'fred' }])).replies).toEqual(['action=DUNNO']);
    else expect(await query(d.target, ['fred'])).toEqual(['OK fred']);
  };
  beforeAll(async () => {
    // a long idle timeout: only the end of each connection may reclaim its descriptor
    env = tempConfig('unixhierarchysep: no\nsmmapd_workers: 1\nsmmapd_timeout: 300');
    ctlBatch(env.conf, ['mailbox create user.fred']);
    d = await startSmmapd({ conf: env.conf, args });
  });
  afterAll(async () => {
    await d?.stop();
    rmSync(env.dir, { recursive: true, force: true });
  });

  it('300 that send more and close, reset or stay: every descriptor comes back, everyone is served', async () => {
    await serves();
    await sleep(200);
    const before = fdCount(d.proc.pid!);
    const open: net.Socket[] = [];
    try {
      const got = await inBatches(300, 30, (i) => refuseThenClose(d.port, bad, ENDINGS[i % 3]!, open));
      expect(new Set(got), 'each got the refusal (or nothing), then the close').toEqual(new Set([reply]));
      // those that stay open are dropped a moment after our last byte
      expect(await waitFor(() => fdCount(d.proc.pid!) <= before, 5000), `fds ${before} before, ${fdCount(d.proc.pid!)} after`).toBe(true);
      await serves();
    } finally {
      for (const s of open) s.destroy();
    }
  }, 60_000);
});

describe('the peer of a client that resets before it is accepted', () => {
  it('is [unknown], not [local]', async () => {
    const env = tempConfig('unixhierarchysep: no\nsmmapd_workers: 1\nsmmapd_log_level: debug');
    ctlBatch(env.conf, ['mailbox create user.fred']);
    const d = await startSmmapd({ conf: env.conf });
    try {
      // stopped, the daemon cannot accept: the connection waits in the queue, then resets there
      d.proc.kill('SIGSTOP');
      await new Promise<void>((resolve) => {
        const sock = net.connect({ port: d.port, host: '127.0.0.1' }, () => {
          sock.resetAndDestroy();
          resolve();
        });
        sock.on('error', () => undefined);
      });
      await sleep(100);
      d.proc.kill('SIGCONT');
      expect(await waitFor(() => /connection \[unknown\]: /.test(d.output()), 5000), d.output()).toBe(true);
      expect(d.output()).not.toContain('[local]');
      expect(await query(d.target, ['fred'])).toEqual(['OK fred']);
    } finally {
      await d.stop();
      rmSync(env.dir, { recursive: true, force: true });
    }
  }, 30_000);
});
