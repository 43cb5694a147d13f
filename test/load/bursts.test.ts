// Bursts against one listener (behaviour §1): hundreds of clients that vanish mid-request or
// sit idle or half-sent, and a client that pipelines 400,000 requests without reading a
// reply. Nobody else may starve, and memory stays bounded. The single hostile inputs are in
// test/integration/robustness.test.ts.
import { rmSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeFixture, type Fixture } from '../helpers/fixture';
import { dial, netstring, query } from '../helpers/socketmap';
import { startSmmapd, type Smmapd } from '../helpers/daemon';

describe('bursts', () => {
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

  it('clients that vanish mid-request, and 300 idle plus 50 half-sent connections, starve no one', async () => {
    for (let i = 0; i < 200; i++) {
      const s = dial(d.target);
      s.on('error', () => undefined);
      s.write('50:any fr');
      s.destroy();
    }
    const held: net.Socket[] = [];
    for (let i = 0; i < 350; i++) {
      const s = dial(d.target);
      s.on('error', () => undefined);
      if (i >= 300) s.write('100:any half');
      held.push(s);
    }
    await new Promise((r) => setTimeout(r, 200));
    const t = Date.now();
    expect(await query(d.target, ['fred'])).toEqual(['OK fred']);
    expect(Date.now() - t).toBeLessThan(1000);
    for (const s of held) s.destroy();
    expect(d.proc.exitCode).toBeNull();
  });

  it('a client that never reads its replies is paused, not buffered without bound', async () => {
    const s = dial(d.target);
    s.on('error', () => undefined);
    s.pause();
    const req = netstring('any fred');
    const many = Buffer.concat(Array.from({ length: 20_000 }, () => req));
    for (let i = 0; i < 20; i++) s.write(many);
    await new Promise((r) => setTimeout(r, 500));
    expect(await query(d.target, ['fred'])).toEqual(['OK fred']);
    s.destroy();
  });

  it('the daemon is alive and said nothing fatal', () => {
    expect(d.proc.exitCode).toBeNull();
    expect(d.output()).not.toMatch(/fatal|uncaught/i);
  });
});
