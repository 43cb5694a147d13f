// Hostile and broken input (behaviour §1): one `PERM Bad protocol (...)` reply and a closed
// connection, no loops, no stalls; after each, the daemon still answers everyone else.
// Bursts of hundreds of clients are in the load tier (test/load/bursts.test.ts).
import { rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctlOk, tempConfig } from '../helpers/base';
import { makeFixture, type Fixture } from '../helpers/fixture';
import { dial, netstring, query, raw } from '../helpers/socketmap';
import { lockStore } from '../helpers/store-lock';
import { startSmmapd, type Smmapd } from '../helpers/daemon';

const BAD = /^\d+:PERM Bad protocol \([^)]*\),$/;

function ctl(conf: string, ...args: string[]): void {
  ctlOk(conf, args);
}

describe('protocol robustness', () => {
  let fx: Fixture;
  let d: Smmapd;
  beforeAll(async () => {
    fx = makeFixture('smmapd_timeout: 2', ['mailbox create user.fred']);
    d = await startSmmapd({ conf: fx.conf });
  });
  afterAll(async () => {
    await d?.stop();
    if (fx) rmSync(fx.dir, { recursive: true, force: true });
  });

  const stillServes = async (): Promise<void> => {
    expect(await query(d.target, ['fred'])).toEqual(['OK fred']);
  };

  it.each([
    ['no digits', 'abc', "missing length"],
    ['lone colon', ':', 'missing length'],
    ['negative length', '-1:x,', 'missing length'],
    ['non-digit before colon', '12x:any fred,', 'missing length'],
    ['no space', '3:any,', 'missing key'],
    ['missing terminator', '5:any f;', 'missing terminator'],
    ['2 GB declared length', '2000000000:any ', 'request too large'],
    ['20-digit length', '99999999999999999999:x', 'request too large'],
    ['just over the maximum', `10001:any ${'x'.repeat(9996)},`, 'request too large'],
  ])('%s: PERM with the reason, connection closed', async (_name, input, reason) => {
    const { data, closed } = await raw(d.target, Buffer.from(input, 'latin1'));
    expect(data.toString('latin1')).toMatch(BAD);
    expect(data.toString('latin1')).toContain(`(${reason})`);
    expect(closed).toBe(true);
    await stillServes();
  });

  it('a length is judged by its value: leading zeros are fine (Cyrus, Postfix, Sendmail)', async () => {
    const { data, closed } = await raw(d.target, Buffer.from('000011:smmapd fred,'), { waitMs: 300 });
    expect(data.toString()).toBe('7:OK fred,');
    expect(closed).toBe(false);
  });

  it('end of input where the comma should be: missing terminator, as Cyrus 3.6 answers', async () => {
    const sock = dial(d.target);
    const got: Buffer[] = [];
    sock.on('data', (b: Buffer) => got.push(b));
    await new Promise((res) => sock.once('connect', res));
    sock.end('11:smmapd fred');
    await new Promise((res) => sock.once('close', res));
    expect(Buffer.concat(got).toString()).toBe('38:PERM Bad protocol (missing terminator),');
  });

  it('the maximum request size itself is served', async () => {
    const key = 'x'.repeat(10_000 - 'any '.length);
    expect(await query(d.target, [key], 'any')).toEqual(['NOTFOUND Mailbox does not exist']);
  });

  it('answers the good requests before a bad one, then closes', async () => {
    const { data, closed } = await raw(d.target, Buffer.from('8:any fred,junk'));
    expect(data.toString()).toMatch(/^7:OK fred,\d+:PERM Bad protocol \(missing length\),$/);
    expect(closed).toBe(true);
  });

  it('pipelined requests are answered in order on an open connection', async () => {
    const { data, closed } = await raw(d.target, Buffer.from('8:any fred,8:any nope,8:any fred,'), { waitMs: 300 });
    expect(data.toString()).toBe('7:OK fred,31:NOTFOUND Mailbox does not exist,7:OK fred,');
    expect(closed).toBe(false);
  });

  it('a request split over many writes', async () => {
    const parts = ['8', ':an', 'y fr', 'ed', ','].map((s) => Buffer.from(s));
    const { data } = await raw(d.target, parts, { gapMs: 50, waitMs: 300 });
    expect(data.toString()).toBe('7:OK fred,');
  });

  it('NUL, control and invalid UTF-8 bytes never name a mailbox', async () => {
    for (const key of [Buffer.from('fred\0bob'), Buffer.from('fred\x1f'), Buffer.from([0x66, 0x72, 0xff, 0xfe, 0x80, 0x64]), Buffer.from('fred\x7f')]) {
      const { data, closed } = await raw(d.target, netstring(Buffer.concat([Buffer.from('any '), key])), { waitMs: 300 });
      expect(data.toString()).toBe('31:NOTFOUND Mailbox does not exist,');
      expect(closed).toBe(false);
    }
    await stillServes();
  });

  it('a slow writer (one byte every 30 ms) is answered; others are served meanwhile', async () => {
    const bytes = [...Buffer.from('8:any fred,')].map((b) => Buffer.from([b]));
    const slow = raw(d.target, bytes, { gapMs: 30, waitMs: 300 });
    await stillServes();
    expect((await slow).data.toString()).toBe('7:OK fred,');
  });

  it('an idle connection is closed after smmapd_timeout', async () => {
    const t = Date.now();
    const { closed } = await raw(d.target, Buffer.alloc(0), { waitMs: 5000 });
    expect(closed).toBe(true);
    expect(Date.now() - t).toBeGreaterThanOrEqual(1900);
  });

  it('the daemon is alive and answered every probe', () => {
    expect(d.proc.exitCode).toBeNull();
    expect(d.output()).not.toMatch(/fatal|uncaught/i);
  });
});

describe('store failures answer TEMP, never OK, and recover', () => {
  it('missing store, then the store appears', async () => {
    const env = tempConfig('unixhierarchysep: no');
    const d = await startSmmapd({ conf: env.conf });
    try {
      const [r] = await query(d.target, ['fred']);
      expect(r).toMatch(/^TEMP /);
      ctl(env.conf, 'mailbox', 'create', 'user.fred');
      await new Promise((res) => setTimeout(res, 1100)); // the driver retries opening at most once a second
      expect(await query(d.target, ['fred'])).toEqual(['OK fred']);
      expect(d.output()).toMatch(/store unavailable/);
    } finally {
      await d.stop();
      rmSync(env.dir, { recursive: true, force: true });
    }
  });

  it('a corrupt store file answers TEMP and the daemon keeps running', async () => {
    const env = tempConfig('unixhierarchysep: no');
    writeFileSync(env.store, 'this is not a database'.repeat(400));
    const d = await startSmmapd({ conf: env.conf });
    try {
      const got = await query(d.target, ['fred', 'nosuch']);
      for (const r of got) expect(r).toMatch(/^TEMP /);
      expect(d.proc.exitCode).toBeNull();
    } finally {
      await d.stop();
      rmSync(env.dir, { recursive: true, force: true });
    }
  });

  it('a store locked by a writer answers TEMP within the busy timeout', async () => {
    const env = tempConfig('unixhierarchysep: no\nsmmapd_store_busy_timeout: 200');
    ctl(env.conf, 'mailbox', 'create', 'user.fred');
    const d = await startSmmapd({ conf: env.conf });
    try {
      const hold = await lockStore(env.store, 4);
      const t = Date.now();
      const [r] = await query(d.target, ['fred']);
      expect(r).toMatch(/^TEMP /);
      expect(Date.now() - t).toBeLessThan(2000);
      await new Promise((res) => hold.once('exit', res));
      expect(await query(d.target, ['fred'])).toEqual(['OK fred']);
    } finally {
      await d.stop();
      rmSync(env.dir, { recursive: true, force: true });
    }
  });
});
