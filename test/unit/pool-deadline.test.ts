// The pieces the directory pools and the IMAP pool share (src/deadline.ts, src/pool.ts's
// WaitQueue), the table registry (src/table/registry.ts) and the one-pass query expansion.
import { describe, expect, it } from 'vitest';
import { Deadline, within } from '../../src/deadline';
import { WaitQueue } from '../../src/pool';
import { TABLE_TYPES, openTable } from '../../src/table/registry';
import { expand, expandOnce, newCtx, parseTemplate, render } from '../../src/table/expand';

const never = new Promise<never>(() => undefined);
const late = (): Error => new Error('late');

describe('one deadline (src/deadline.ts)', () => {
  it('a promise settled in time passes through; a late one rejects after onLate', async () => {
    expect(await within(Promise.resolve(7), Date.now() + 1000, late)).toBe(7);
    await expect(within(Promise.reject(new Error('own')), Date.now() + 1000, late)).rejects.toThrow('own');
    let called = 0;
    const t0 = Date.now();
    await expect(within(never, Date.now() + 100, late, () => called++)).rejects.toThrow('late');
    expect(called).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(95);
    expect(await within(Promise.resolve(1), Infinity, late)).toBe(1);
  });
  it('a deadline pushed back while waiting is honoured (an IMAP answer still coming in)', async () => {
    const d = Deadline.in(100);
    const t0 = Date.now();
    setTimeout(() => d.extend(300), 50);
    await expect(within(never, d, late)).rejects.toThrow('late');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(340);
  });
});

describe('the wait queue both pools share (src/pool.ts)', () => {
  it('first come first served; a waiter leaves at its deadline; failAll fails every one', async () => {
    const q = new WaitQueue<string>();
    const a = q.wait(Date.now() + 5000, late);
    const b = q.wait(Deadline.in(5000), late);
    const c = q.wait(Date.now() + 50, late);
    expect(q.size).toBe(3);
    expect(q.give('x')).toBe(true);
    expect(await a).toBe('x');
    await expect(c).rejects.toThrow('late');
    expect(q.size).toBe(1);
    q.failAll(() => new Error('down'));
    await expect(b).rejects.toThrow('down');
    expect(q.give('y')).toBe(false);
  });
  it('a waiter taken out keeps its deadline: given after it, it says it left', async () => {
    const q = new WaitQueue<string>();
    const p = q.wait(Date.now() + 30, late);
    const w = q.take()!;
    expect(q.size).toBe(0);
    await expect(p).rejects.toThrow('late');
    expect(w.give('late session')).toBe(false);
  });
});

describe('the table registry (src/table/registry.ts)', () => {
  it('every type name has a driver module (src/table/TYPE.ts); an unknown type names the known ones', async () => {
    expect([...TABLE_TYPES]).toEqual(['pgsql', 'mysql', 'sqlite', 'ldap']);
    // (the registry's require() of a driver needs the build: vitest imports the sources here)
    for (const t of TABLE_TYPES) expect(typeof ((await import(`../../src/table/${t}.ts`)) as { openTable?: unknown }).openTable).toBe('function');
    const cfg = { mapTimeoutMs: 1000, mapPoolSize: 1 };
    expect(() => openTable('hash', '/x', cfg, () => undefined)).toThrow('unknown table type "hash" (known: pgsql, mysql, sqlite, ldap)');
    expect(() => openTable('constructor', '/x', cfg, () => undefined)).toThrow(/unknown table type/);
  });
});

describe('the query expanded once, quoted per connection', () => {
  it('render(expandOnce()) is what expand() gives, for every quoting', () => {
    const ctx = newCtx();
    const q = "SELECT '%s' '%u' '%d' '%S' '%U' '%D' '%1' '%2' 100%%";
    parseTemplate(ctx, q, true, 'test');
    const quote = (s: string): string => s.replace(/'/g, "''");
    for (const key of ["o'neil@mail.example.com", 'fred@example.com', 'a@b.c']) {
      const out: string[] = [];
      expect(expand(ctx, q, key, null, out, quote)).toBe(true);
      expect(render(expandOnce(ctx, q, key, null)!, quote)).toBe(out[0]);
    }
    // a key that cannot fill the template is not looked up
    expect(expandOnce(ctx, q, 'nodomain', null)).toBe(null);
  });
});
