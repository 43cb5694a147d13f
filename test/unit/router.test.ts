// A socketmap request's way, without sockets: the router's decision per map name (once,
// whatever the case, with the metrics label it counts under), the one answer cache both
// answer paths use, and the peer as log lines print it.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeNetstring } from '../../src/core/netstring';
import { AnswerCache, MAX_CACHED_KEY } from '../../src/server/answer-cache';
import type { Answer } from '../../src/server/answers';
import { Metrics, OTHER, VERIFY } from '../../src/server/metrics';
import { formatPeer, peerOf } from '../../src/server/peer';
import { MapRouter, type KeyAnswers } from '../../src/server/router';

/** Answers `<who> <key>`, so a test sees who answered. */
function answers(who: string): KeyAnswers & { refresh(): void; refreshed: number } {
  const a = {
    refreshed: 0,
    refresh: () => void a.refreshed++,
    answer: (k: Buffer): Answer => ({ wire: encodeNetstring(`OK ${who} ${k.toString()}`), outcome: 'ok', status: 'OK', key: k.toString() }),
  };
  return a;
}

/** Route a whole request as the session does: the name is the bytes before the first space. */
function ask(r: MapRouter, request: string): { wire: string; label: number } {
  const b = Buffer.from(request);
  const sp = b.indexOf(32);
  const route = r.route(b, sp);
  const a = route.answers.answer(b.subarray(sp + 1)) as Answer;
  return { wire: a.wire, label: route.label };
}

describe('MapRouter', () => {
  it('a configured map by its name in any case, the Cyrus verification otherwise', () => {
    const cyrus = answers('cyrus');
    const r = new MapRouter({ cyrus, maps: new Map([['aliases', answers('aliases')]]) });
    expect(ask(r, 'ALIASES fred').wire).toBe(encodeNetstring('OK aliases fred'));
    expect(ask(r, 'aliases fred').wire).toBe(encodeNetstring('OK aliases fred'));
    expect(ask(r, 'smmapd fred').wire).toBe(encodeNetstring('OK cyrus fred'));
    expect(ask(r, 'anything fred').wire).toBe(encodeNetstring('OK cyrus fred'));
  });

  it('a batch looks whether the store changed before its first Cyrus answer, once; a batch of map requests does not', () => {
    const cyrus = answers('cyrus');
    const r = new MapRouter({ cyrus, maps: new Map([['aliases', answers('aliases')]]) });
    r.newBatch();
    ask(r, 'aliases fred');
    expect(cyrus.refreshed).toBe(0);
    ask(r, 'smmapd fred');
    ask(r, 'smmapd barney');
    expect(cyrus.refreshed).toBe(1);
    r.newBatch();
    ask(r, 'aliases fred');
    expect(cyrus.refreshed).toBe(1);
    ask(r, 'other fred');
    expect(cyrus.refreshed).toBe(2);
    // without maps the name is not read, the store still looked at once per batch
    const alone = answers('cyrus');
    const r2 = new MapRouter({ cyrus: alone });
    r2.newBatch();
    ask(r2, 'x a');
    ask(r2, 'x b');
    expect(alone.refreshed).toBe(1);
  });

  it('with smmapd_verify_maps, another name is TEMP "Map not configured" and reported once per request', () => {
    const told: string[] = [];
    const r = new MapRouter({ cyrus: answers('cyrus'), verifyMaps: new Set(['smmapd', 'cyrus']), onUnconfigured: (n) => told.push(n) });
    expect(ask(r, 'Cyrus fred').wire).toBe(encodeNetstring('OK cyrus fred'));
    expect(ask(r, 'Virtual fred').wire).toBe(encodeNetstring('TEMP Map not configured'));
    expect(told).toEqual(['virtual']);
  });

  it('the metrics label is the decision: one series whatever the case of the name', () => {
    const m = new Metrics();
    m.setMaps(['aliases']);
    const r = new MapRouter({ cyrus: answers('cyrus'), maps: new Map([['aliases', answers('aliases')]]), metrics: m });
    const aliases = ask(r, 'aliases x').label;
    expect(ask(r, 'ALIASES x').label).toBe(aliases);
    expect(aliases).toBe(m.labelOf('aliases'));
    expect(ask(r, 'SMMAPD x').label).toBe(VERIFY);
    expect(ask(r, 'smmapd x').label).toBe(VERIFY);
    expect(ask(r, 'typo x').label).toBe(OTHER);
  });

  it('without maps, a verify list or metrics, the name is not read (Cyrus ignores it)', () => {
    const r = new MapRouter({ cyrus: answers('cyrus') });
    const b = Buffer.from('whatever fred');
    const spy = vi.spyOn(b, 'toString');
    expect(r.route(b, 8).answers.answer(b.subarray(9))).toEqual(expect.objectContaining({ key: 'fred' }));
    expect(spy).not.toHaveBeenCalledWith('latin1', 0, 8);
  });
});

describe('AnswerCache', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is bounded, the oldest entry going first', () => {
    const c = new AnswerCache<number>(2);
    c.set('a', 1, 0);
    c.set('b', 2, 0);
    c.set('c', 3, 0);
    expect([c.get('a'), c.get('b'), c.get('c')]).toEqual([undefined, 2, 3]);
    expect(c.stats).toEqual({ hits: 2, misses: 1 });
  });

  it('an entry expires after its TTL; 0 keeps it until clear()', () => {
    const c = new AnswerCache<string>(10);
    c.set('ttl', 'x', 1000);
    c.set('exact', 'y', 0);
    vi.advanceTimersByTime(999);
    expect(c.get('ttl')).toBe('x');
    vi.advanceTimersByTime(2);
    expect(c.get('ttl')).toBeUndefined();
    vi.advanceTimersByTime(1e9);
    expect(c.get('exact')).toBe('y');
    c.clear();
    expect(c.get('exact')).toBeUndefined();
  });

  it('keeps nothing with size 0 or past the key length bound, and counts into the stats it is given', () => {
    const stats = { hits: 0, misses: 0 };
    const off = new AnswerCache<number>(0, stats);
    off.set('a', 1, 0);
    expect(off.get('a')).toBeUndefined();
    const c = new AnswerCache<number>(10, stats);
    c.set('k'.repeat(MAX_CACHED_KEY + 1), 1, 0);
    c.set('k'.repeat(MAX_CACHED_KEY), 2, 0);
    expect(c.get('k'.repeat(MAX_CACHED_KEY + 1))).toBeUndefined();
    expect(c.get('k'.repeat(MAX_CACHED_KEY))).toBe(2);
    expect(stats).toEqual({ hits: 1, misses: 2 });
  });
});

describe('Peer', () => {
  it('is printed as Cyrus names a client; the address alone is what the rate limiter keys on', () => {
    expect(formatPeer(peerOf({ remoteAddress: '192.0.2.1', remotePort: 4711 }))).toBe('192.0.2.1:4711');
    expect(peerOf({ remoteAddress: '::1', remotePort: 4711 })).toEqual({ address: '::1', port: 4711 });
    expect(formatPeer(peerOf({}))).toBe('[local]');
    expect(formatPeer(peerOf({ localAddress: '127.0.0.1' }))).toBe('[unknown]');
  });
});
