// A named map on the answer path (src/table/maps.ts), with a table in memory: the replies,
// the TTL cache, the deadline, and the keys that are never looked up.
import { describe, expect, it } from 'vitest';
import { configFromText } from '../../src/config';
import { StoreError, type LookupTable } from '../../src/core/contract';
import { MapAnswerer } from '../../src/table/maps';

function table(answers: Record<string, string | null | Error | 'hang'>): LookupTable & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    lookup(key) {
      asked.push(key);
      const a = answers[key] ?? null;
      if (a === 'hang') return new Promise<string | null>(() => undefined);
      if (a instanceof Error) return Promise.reject(a);
      return Promise.resolve(a);
    },
    close() {},
  };
}

const payload = async (m: MapAnswerer, key: string | Buffer): Promise<string> => {
  const w = (await m.answer(typeof key === 'string' ? Buffer.from(key) : key)).wire;
  return w.slice(w.indexOf(':') + 1, -1);
};

describe('named map answers', () => {
  it('OK value, NOTFOUND with one space, TEMP with the reason; never OK on failure', async () => {
    const t = table({ a: 'x@example.com,y@example.com', down: new StoreError('pgsql unavailable: ECONNREFUSED'), bug: new Error('boom') });
    const m = new MapAnswerer('m', t, configFromText(''));
    expect(await payload(m, 'a')).toBe('OK x@example.com,y@example.com');
    expect(await payload(m, 'none')).toBe('NOTFOUND ');
    expect(await payload(m, 'down')).toBe('TEMP pgsql unavailable: ECONNREFUSED');
    expect(await payload(m, 'bug')).toBe('TEMP internal error');
  });
  it('answers TEMP at the deadline (smmapd_maps_timeout)', async () => {
    const m = new MapAnswerer('m', table({ slow: 'hang' }), configFromText('smmapd_maps_timeout: 1'));
    const t0 = Date.now();
    expect(await payload(m, 'slow')).toBe('TEMP map m lookup timed out');
    expect(Date.now() - t0).toBeLessThan(1500);
  });
  it('keys a C client cannot send (NUL, invalid UTF-8) are not looked up', async () => {
    const t = table({});
    const m = new MapAnswerer('m', t, configFromText(''));
    expect(await payload(m, Buffer.from('a\0b'))).toBe('NOTFOUND ');
    expect(await payload(m, Buffer.from([0x61, 0xff]))).toBe('NOTFOUND ');
    expect(t.asked).toEqual([]);
  });
  it('caches OK and NOTFOUND for their TTLs, never TEMP; off by default', async () => {
    const answers: Record<string, string | null | Error> = { a: 'v', down: new StoreError('x') };
    const t = table(answers);
    const off = new MapAnswerer('m', t, configFromText(''));
    await payload(off, 'a');
    await payload(off, 'a');
    expect(t.asked).toEqual(['a', 'a']);
    t.asked.length = 0;
    const on = new MapAnswerer('m', t, configFromText('smmapd_maps_cache_ttl: 60\nsmmapd_maps_negative_cache_ttl: 60'));
    for (const k of ['a', 'a', 'none', 'none', 'down', 'down']) await payload(on, k);
    expect(t.asked).toEqual(['a', 'none', 'down', 'down']);
    answers.a = 'changed';
    expect(await payload(on, 'a')).toBe('OK v'); // until the TTL runs out: these stores cannot say when they change
  });
  it('a value too long for a socketmap reply is TEMP, not cut', async () => {
    const m = new MapAnswerer('m', table({ big: 'x'.repeat(100_000) }), configFromText(''));
    expect(await payload(m, 'big')).toBe('TEMP Result too long');
  });
});

describe('the host list', () => {
  it('tries hosts in order, backs off from a failed one, retries it after the backoff, passes query errors on', async () => {
    const { HostList, QueryError } = await import('../../src/table/hosts');
    const down = new Set(['a']);
    const calls: string[] = [];
    const logs: string[] = [];
    const hl = new HostList('pgsql', ['a', 'b'], ['a', 'b'], (m) => logs.push(m));
    const ask = (): Promise<string> =>
      hl.run(async (h) => {
        calls.push(h);
        if (down.has(h)) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        return h;
      });
    expect(await ask()).toBe('b');
    expect(calls).toEqual(['a', 'b']); // the first host first
    expect(await ask()).toBe('b');
    down.add('b');
    await expect(ask()).rejects.toThrow('pgsql unavailable: ECONNREFUSED');
    await expect(ask()).rejects.toThrow('pgsql hosts down (ECONNREFUSED)'); // both backing off: fast TEMP
    down.clear();
    await new Promise((r) => setTimeout(r, 600)); // past the first backoffs
    expect(await ask()).toBe('a');
    expect(logs).toContain('pgsql: a is back');
    await expect(hl.run(() => Promise.reject(new QueryError('relation "x" does not exist')))).rejects.toThrow(/^pgsql query failed$/);
    expect(logs.at(-1)).toBe('pgsql: a: query failed: relation "x" does not exist');
  });
});

describe('what the host list logs, and under which rate-limit key (issue 13: log flood)', () => {
  it('a query that fails on a key, and a host going down and up: each with its key, so that the service bounds them', async () => {
    const { HostList, QueryError } = await import('../../src/table/hosts');
    const logs: Array<[string, string | undefined]> = [];
    let down = true;
    const hl = new HostList('pgsql', ['a'], ['a'], (m, limit) => logs.push([m, limit]));
    const ask = (): Promise<string> =>
      hl.run(async () => {
        if (down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        return 'v';
      });
    await expect(ask()).rejects.toThrow();
    down = false;
    await new Promise((r) => setTimeout(r, 300));
    await ask();
    await expect(hl.run(() => Promise.reject(new QueryError('invalid input syntax for type integer: "x\ny"')))).rejects.toThrow('pgsql query failed');
    expect(logs).toEqual([
      ['pgsql: a failed: connect ECONNREFUSED', 'pgsql: a: up and down'],
      ['pgsql: a is back', 'pgsql: a: up and down'],
      ['pgsql: a: query failed: invalid input syntax for type integer: "x\ny"', 'pgsql: a: query failed'],
    ]);
  });
});
