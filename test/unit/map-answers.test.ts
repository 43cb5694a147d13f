// A named map on the answer path (src/server/map-answers.ts), with a table in memory: the replies,
// the TTL cache, the deadline, and the keys that are never looked up.
import { describe, expect, it } from 'vitest';
import { configFromText } from '../../src/config';
import { StoreError, type LookupTable } from '../../src/core/contract';
import * as hosts from '../../src/table/hosts';
import { MapAnswers } from '../../src/server/map-answers';

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

const payload = async (m: MapAnswers, key: string | Buffer): Promise<string> => {
  const w = (await m.answer(typeof key === 'string' ? Buffer.from(key) : key)).wire;
  return w.slice(w.indexOf(':') + 1, -1);
};

describe('named map answers', () => {
  it('OK value, NOTFOUND with one space, TEMP with the reason; never OK on failure', async () => {
    const t = table({ a: 'x@example.com,y@example.com', down: new StoreError('pgsql unavailable: ECONNREFUSED'), bug: new Error('boom') });
    const m = new MapAnswers('m', t, configFromText(''));
    expect(await payload(m, 'a')).toBe('OK x@example.com,y@example.com');
    expect(await payload(m, 'none')).toBe('NOTFOUND ');
    expect(await payload(m, 'down')).toBe('TEMP pgsql unavailable: ECONNREFUSED');
    expect(await payload(m, 'bug')).toBe('TEMP internal error');
  });
  it('answers TEMP at the deadline (smmapd_maps_timeout)', async () => {
    const m = new MapAnswers('m', table({ slow: 'hang' }), configFromText('smmapd_maps_timeout: 1'));
    const t0 = Date.now();
    expect(await payload(m, 'slow')).toBe('TEMP map m lookup timed out');
    expect(Date.now() - t0).toBeLessThan(1500);
  });
  it('keys a C client cannot send (NUL, invalid UTF-8) are not looked up', async () => {
    const t = table({});
    const m = new MapAnswers('m', t, configFromText(''));
    expect(await payload(m, Buffer.from('a\0b'))).toBe('NOTFOUND ');
    expect(await payload(m, Buffer.from([0x61, 0xff]))).toBe('NOTFOUND ');
    expect(t.asked).toEqual([]);
  });
  it('caches OK and NOTFOUND for their TTLs, never TEMP; off by default', async () => {
    const answers: Record<string, string | null | Error> = { a: 'v', down: new StoreError('x') };
    const t = table(answers);
    const off = new MapAnswers('m', t, configFromText(''));
    await payload(off, 'a');
    await payload(off, 'a');
    expect(t.asked).toEqual(['a', 'a']);
    t.asked.length = 0;
    const on = new MapAnswers('m', t, configFromText('smmapd_maps_cache_ttl: 60\nsmmapd_maps_negative_cache_ttl: 60'));
    for (const k of ['a', 'a', 'none', 'none', 'down', 'down']) await payload(on, k);
    expect(t.asked).toEqual(['a', 'none', 'down', 'down']);
    answers.a = 'changed';
    expect(await payload(on, 'a')).toBe('OK v'); // until the TTL runs out: these stores cannot say when they change
  });
  it('a value too long for a socketmap reply is TEMP, not cut', async () => {
    const m = new MapAnswers('m', table({ big: 'x'.repeat(100_000) }), configFromText(''));
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

describe('the deadline and the pools (issue 13: a hung directory)', () => {
  /** A fake connection: its queries answer at once, or hang for ever while `hung` is set. */
  interface Fake {
    id: number;
    destroyed: '' | 'closed' | 'abandoned';
  }
  const world = (): {
    pool: hosts.ConnPool<Fake>;
    conns: Fake[];
    state: { hung: boolean; queries: number };
    query: (c: Fake) => Promise<string>;
  } => {
    const conns: Fake[] = [];
    const state = { hung: false, queries: 0 };
    const { ConnPool } = hosts;
    const pool = new ConnPool<Fake>(
      2,
      async () => {
        const c: Fake = { id: conns.length, destroyed: '' };
        conns.push(c);
        return c;
      },
      (c, abandoned) => (c.destroyed = abandoned ? 'abandoned' : 'closed'),
    );
    const query = (c: Fake): Promise<string> => {
      state.queries++;
      return state.hung ? new Promise<string>(() => undefined) : Promise.resolve(`ok ${c.id}`);
    };
    return { pool, conns, state, query };
  };

  it('a query past its deadline is abandoned with its connection, and the slot is free again', async () => {
    const { pool, conns, state, query } = world();
    expect(await pool.use(query, Date.now() + 1000)).toBe('ok 0');
    state.hung = true;
    const t0 = Date.now();
    await expect(pool.use(query, Date.now() + 200)).rejects.toBeInstanceOf(hosts.HungError);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(conns[0]!.destroyed).toBe('abandoned'); // never reused: the server cannot run it later
    state.hung = false;
    expect(await pool.use(query, Date.now() + 1000)).toBe('ok 1');
    expect(await pool.use(query, Date.now() + 1000)).toBe('ok 1');
  });

  it('the queue is bounded: past it a lookup is refused at once; a waiter leaves the queue at its deadline', async () => {
    const { pool, state, query } = world();
    state.hung = true;
    const until = Date.now() + 400;
    const running = Promise.allSettled([pool.use(query, until), pool.use(query, until)]);
    const queued = Promise.allSettled(Array.from({ length: 2 * hosts.QUEUE_PER_CONNECTION }, () => pool.use(query, Date.now() + 300)));
    await Promise.resolve();
    expect(pool.waiting).toBe(2 * hosts.QUEUE_PER_CONNECTION);
    await expect(pool.use(query, until)).rejects.toThrow(/lookups queued/);
    for (const q of await queued) expect(q.status === 'rejected' && q.reason instanceof hosts.BusyError).toBe(true);
    expect(pool.waiting).toBe(0);
    for (const r of await running) expect(r.status === 'rejected' && r.reason instanceof hosts.HungError).toBe(true);
    expect(state.queries).toBe(2); // the queued lookups never reached the server
  });

  it('a host that hangs is marked down at the deadline: later lookups get TEMP at once, one probe after the backoff, recovery', async () => {
    const { pool, state, query } = world();
    const logs: string[] = [];
    const hl = new hosts.HostList('mysql', [pool], ['db'], (m) => logs.push(m));
    const ask = (ms: number): Promise<string> => hl.run((p, _i, until) => p.use(query, until), Date.now() + ms);
    expect(await ask(1000)).toBe('ok 0');
    state.hung = true;
    const t0 = Date.now();
    // two running, the rest queued behind them: all answered at the deadline, none later
    const first = Array.from({ length: 10 }, () => ask(300).catch((e: Error) => e.message));
    // (the queued ones may reach their deadline a moment before the running ones)
    for (const r of await Promise.all(first)) expect(r).toMatch(/^mysql unavailable: timed out( \(queued\))?$/);
    expect(Date.now() - t0).toBeLessThan(2500); // the deadline (0.3 s), not later (generous: a loaded machine)
    expect(pool.waiting).toBe(0);
    expect(logs).toEqual(['mysql: db failed: timed out']);
    const t1 = Date.now();
    // "hosts down": no attempt at all (an attempt would say "unavailable")
    await expect(ask(300)).rejects.toThrow('mysql hosts down (timed out)');
    expect(Date.now() - t1).toBeLessThan(250);
    await new Promise((r) => setTimeout(r, 300)); // past the first backoff (0.25 s)
    // one lookup probes the host; the others keep away meanwhile
    const probe = ask(300).catch((e: Error) => e.message);
    await expect(ask(300)).rejects.toThrow('mysql hosts down (timed out)');
    expect(await probe).toBe('mysql unavailable: timed out');
    state.hung = false;
    await new Promise((r) => setTimeout(r, 600)); // past the second backoff (0.5 s)
    expect(await ask(1000)).toMatch(/^ok \d+$/);
    expect(logs.at(-1)).toBe('mysql: db is back');
  });

  it('the next host gets its share of the deadline when the first hangs', async () => {
    const a = world();
    const b = world();
    a.state.hung = true;
    const hl = new hosts.HostList('pgsql', [a.pool, b.pool], ['a', 'b'], () => undefined);
    const t0 = Date.now();
    expect(await hl.run((p, i, until) => p.use(i === 0 ? a.query : b.query, until), Date.now() + 4000)).toBe('ok 0');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1950); // half the deadline for the first host
    expect(Date.now() - t0).toBeLessThan(3800); // and the second answered within the rest
  });
});

describe('single-flight', () => {
  it('concurrent lookups of the same key share one query', async () => {
    let release: (v: string) => void = () => undefined;
    const asked: string[] = [];
    const t: LookupTable = {
      lookup(key) {
        asked.push(key);
        return key === 'slow' ? new Promise<string>((r) => (release = r)) : Promise.resolve(`v-${key}`);
      },
      close() {},
    };
    const m = new MapAnswers('m', t, configFromText(''));
    const answers = [payload(m, 'slow'), payload(m, 'slow'), payload(m, 'other'), payload(m, 'slow')];
    release('shared');
    expect(await Promise.all(answers)).toEqual(['OK shared', 'OK shared', 'OK v-other', 'OK shared']);
    expect(asked).toEqual(['slow', 'other']);
    // done: the next request asks again (no cache configured)
    void payload(m, 'slow');
    expect(asked).toEqual(['slow', 'other', 'slow']);
  });
});

describe('what the host list logs, and under which rate-limit key (issue 13: log flood)', () => {
  it('a query that fails on a key, and a host going down and up: each with its key, so that the service bounds them', async () => {
    const { HostList, QueryError } = await import('../../src/table/hosts');
    const logs: Array<[string, string | undefined]> = [];
    let down = true;
    const hl = new HostList('pgsql', ['a'], ['a'], (m, _level, limit) => logs.push([m, limit]));
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
