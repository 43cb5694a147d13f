// One connection's bookkeeping, on in-memory streams with scripted answers: replies in
// order, bounded queues, and what SIGTERM's drain and a bug on the answer path do. Time is
// vitest's fake clock: a "slow" answer costs no real time.
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeNetstring } from '../../src/core/netstring';
import { makeLogger } from '../../src/log';
import { CyrusAnswers, type Answer } from '../../src/server/answers';
import { CLOSE_LINGER_MS } from '../../src/server/connection';
import type { Peer } from '../../src/server/peer';
import { PolicyAnswers, type PolicyResponse } from '../../src/server/policy-answers';
import { PolicySession, type PolicyContext } from '../../src/server/policy-session';
import { MapRouter } from '../../src/server/router';
import { SocketmapSession, type SocketmapContext } from '../../src/server/session';
import { memoryStore } from '../../src/store/memory';
import { netstring } from '../helpers/socketmap';

const answerOf = (key: string): Answer => ({ wire: encodeNetstring(`OK ${key}`), outcome: 'ok', status: 'OK', key });

/** A router whose Cyrus answers are scripted per key: a value now, a promise, or a throw. */
function scripted(fn: (key: string) => Answer | Promise<Answer>): MapRouter {
  return new MapRouter({ cyrus: { refresh: () => undefined, answer: (k: Buffer) => fn(k.toString()) } });
}

/** The peer the log lines name `test`. */
const PEER: Peer = { address: 'test' };

function session(router: MapRouter): { s: SocketmapSession; input: PassThrough; output: PassThrough; got: () => string; errors: string[] } {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (d: Buffer) => (text += d.toString()));
  const errors: string[] = [];
  const log = makeLogger('error', { write: (_level, line) => void errors.push(line) });
  const ctx: SocketmapContext = { router, maxRequest: 10_000, idleTimeoutMs: 0, log, audit: false };
  return { s: new SocketmapSession(input, output, PEER, ctx), input, output, got: () => text, errors };
}

/** A scripted answer's delay, on the fake clock. */
const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Let the fake clock run `ms`, with the streams' and promises' work in between. */
const tick = async (ms = 10): Promise<void> => void (await vi.advanceTimersByTimeAsync(ms));

describe('SocketmapSession', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps request order when a slow answer comes before fast ones', async () => {
    const t = session(scripted((k) => (k === 'slow' ? delay(50).then(() => answerOf(k)) : answerOf(k))));
    t.input.write(Buffer.concat(['any slow', 'any a', 'any b'].map((r) => netstring(r))));
    await tick(100);
    expect(t.got()).toBe('7:OK slow,4:OK a,4:OK b,');
  });

  it('a drain (SIGTERM) waits for an answer still in flight, however slow, before closing', async () => {
    const t = session(scripted((k) => delay(1500).then(() => answerOf(k))));
    t.input.write(netstring('any fred'));
    await tick(20);
    t.s.drain();
    let closed = false;
    void t.s.done.then(() => (closed = true));
    await tick(1400);
    expect(closed).toBe(false);
    await tick(100);
    await t.s.done;
    expect(t.got()).toBe('7:OK fred,');
  });

  it('a rejected answer is TEMP internal error, logged, and the connection goes on', async () => {
    const t = session(scripted((k) => (k === 'bad' ? Promise.reject(new Error('boom')) : answerOf(k))));
    t.input.write(Buffer.concat([netstring('any bad'), netstring('any ok')]));
    await tick(50);
    expect(t.got()).toBe('19:TEMP internal error,5:OK ok,');
    expect(t.errors.join('\n')).toMatch(/internal error answering test: Error: boom/);
  });

  it('answers queued behind a slow one stop the reading at the bound', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const t = session(scripted((k) => (k === 'slow' ? gate.then(() => answerOf(k)) : answerOf(k))));
    const many = Buffer.concat([netstring('any slow'), ...Array.from({ length: 5000 }, () => netstring('any x'))]);
    t.input.write(many);
    await tick(50);
    expect(t.input.isPaused()).toBe(true);
    release();
    await tick(50);
    expect(t.got().startsWith('7:OK slow,4:OK x,')).toBe(true);
  });

  it('a client that does not read gets one drain listener, not one per write', async () => {
    const t = session(scripted(answerOf));
    t.output.pause();
    t.output.removeAllListeners('data');
    for (let i = 0; i < 50; i++) {
      t.input.write(Buffer.concat(Array.from({ length: 400 }, () => netstring('any fred'))));
      await tick(1);
    }
    expect(t.output.listenerCount('drain')).toBeLessThanOrEqual(1);
  });
});

describe('PolicySession (the same Connection under the policy framing)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const reply = (r: string): PolicyResponse => ({ wire: `action=DUNNO ${r}\n\n`, kind: 'success', status: 'OK', outcome: 'ok', key: r });
  const req = (r: string): string => `request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=${r}\n\n`;

  function policySession(fn: (r: string) => PolicyResponse | Promise<PolicyResponse>): { s: PolicySession; input: PassThrough; got: () => string } {
    const input = new PassThrough();
    const output = new PassThrough();
    let text = '';
    output.on('data', (d: Buffer) => (text += d.toString()));
    const policy = Object.create(PolicyAnswers.prototype) as PolicyAnswers;
    Object.assign(policy, { answer: (q: { recipient: Buffer | null }) => fn(q.recipient?.toString() ?? '') });
    const log = makeLogger('error', { write: () => undefined });
    const ctx: PolicyContext = { policy, maxRequest: 10_000, idleTimeoutMs: 0, log, audit: false };
    return { s: new PolicySession(input, output, PEER, ctx), input, got: () => text };
  }

  it('keeps request order when a slow answer comes before fast ones', async () => {
    const t = policySession((r) => (r === 'slow' ? delay(50).then(() => reply(r)) : reply(r)));
    t.input.write(req('slow') + req('a') + req('b'));
    await tick(100);
    expect(t.got()).toBe('action=DUNNO slow\n\naction=DUNNO a\n\naction=DUNNO b\n\n');
  });

  it('a malformed request after a slow one: the slow reply, then the close without a reply', async () => {
    const t = policySession((r) => (r === 'slow' ? delay(50).then(() => reply(r)) : reply(r)));
    t.input.write(`${req('slow')}no equals sign\n\n${req('after')}`);
    await tick(100);
    await t.s.done;
    expect(t.got()).toBe('action=DUNNO slow\n\n');
  });
});

describe('CyrusAnswers cache', () => {
  it('does not keep keys longer than 512 bytes', () => {
    // Both keys name user.fred (virtdomains off drops the domain).
    const store = memoryStore({ mailboxes: [{ name: 'user.fred', acl: '' }], quotas: [] });
    const lookups = (): number => store.calls.filter((c) => c.startsWith('mailbox ')).length;
    const policy = { resolve: { virtdomains: 'off', defaultdomain: '', postuser: '', downcase: true, separator: '.', skipPlus: false }, serviceName: 'smmapd', overQuotaPerm: false } as const;
    const a = new CyrusAnswers(store, policy, { size: 100, positiveTtlMs: 0, negativeTtlMs: 0 });
    const long = Buffer.from(`fred@${'a'.repeat(600)}`);
    a.answer(long);
    a.answer(long);
    expect(lookups()).toBe(2);
    a.answer(Buffer.from('fred'));
    a.answer(Buffer.from('fred'));
    expect(lookups()).toBe(3);
  });
});

describe('the end of a connection on a real socket (issue 13: refused connections never closed)', () => {
  /** A loopback socket pair: `server` is what a listener accepts, `client` the peer. */
  async function pair(): Promise<{ server: net.Socket; client: net.Socket; close(): void }> {
    // the client too keeps its end open after our FIN, as a pooled or hostile one may
    const srv = net.createServer({ allowHalfOpen: true });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
    const client = net.connect({ port: (srv.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
    client.on('error', () => undefined);
    const server = await accepted;
    return { server, client, close: () => (client.destroy(), server.destroy(), srv.close()) };
  }

  const ctxOf = (extra: Partial<SocketmapContext & PolicyContext> = {}): SocketmapContext & PolicyContext => ({
    router: scripted(answerOf),
    policy: Object.create(PolicyAnswers.prototype) as PolicyAnswers,
    maxRequest: 10_000,
    idleTimeoutMs: 0,
    log: makeLogger('error', { write: () => undefined }),
    audit: false,
    ...extra,
  });

  /** Resolves true when `p` settles within ms. */
  const within = (p: Promise<unknown>, ms: number): Promise<boolean> => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

  const readAll = (sock: net.Socket): Promise<string> =>
    new Promise((resolve) => {
      let text = '';
      sock.on('data', (d: Buffer) => (text += d.toString()));
      sock.once('end', () => resolve(text));
    });

  it('socketmap: a refused client that sends one more byte and closes is noticed at once', async () => {
    const p = await pair();
    try {
      const s = new SocketmapSession(p.server, p.server, PEER, ctxOf());
      const got = readAll(p.client);
      p.client.write('abc');
      expect(await got).toBe('34:PERM Bad protocol (missing length),');
      p.client.end('x');
      expect(await within(s.done, 500)).toBe(true);
      expect(p.server.destroyed).toBe(true);
    } finally {
      p.close();
    }
  });

  it('policy: a refused client that sends more and closes is noticed at once', async () => {
    const p = await pair();
    try {
      const s = new PolicySession(p.server, p.server, PEER, ctxOf());
      const got = readAll(p.client);
      p.client.write('request=smtpd_access_policy\nhello\n');
      expect(await got).toBe('');
      p.client.end('more\n');
      expect(await within(s.done, 500)).toBe(true);
      expect(p.server.destroyed).toBe(true);
    } finally {
      p.close();
    }
  });

  it('a refused client that keeps its end open is dropped after the linger, not kept', async () => {
    const p = await pair();
    try {
      const s = new SocketmapSession(p.server, p.server, PEER, ctxOf());
      const got = readAll(p.client);
      p.client.write('abc');
      await got;
      const t0 = Date.now();
      p.client.write('y'.repeat(100_000)); // read and dropped, not queued
      expect(await within(s.done, CLOSE_LINGER_MS + 2000)).toBe(true);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(CLOSE_LINGER_MS - 100);
      expect(p.server.destroyed).toBe(true);
    } finally {
      p.close();
    }
  });

  it('a client that stopped reading (input paused for backpressure) and then resets is noticed', async () => {
    const p = await pair();
    try {
      const s = new SocketmapSession(p.server, p.server, PEER, ctxOf());
      p.client.pause();
      const frame = netstring('any fred');
      // pipeline until the server has stopped reading (its replies fill both socket buffers)
      const batch = Buffer.concat(Array.from({ length: 10_000 }, () => frame));
      for (let i = 0; i < 400 && !p.server.isPaused(); i++) {
        if (p.client.writableLength < 1e6) p.client.write(batch);
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(p.server.isPaused()).toBe(true);
      p.client.resetAndDestroy();
      expect(await within(s.done, 2000)).toBe(true);
    } finally {
      p.close();
    }
  });
});
