// Prometheus text rendering, summing workers' snapshots, and the bound on client-chosen labels.
import { describe, expect, it } from 'vitest';
import { MAX_SERIES, Metrics, renderPrometheus, sumSnapshots } from '../../src/server/metrics';

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/;

describe('metrics', () => {
  it('renders valid exposition text with a cumulative histogram', () => {
    const m = new Metrics();
    m.answered('OK', 'ok', 'smmapd', Metrics.now());
    m.answered('NOTFOUND', 'nonexistent', 'smmapd', Metrics.now() - 3_000_000_000n); // 3 s ago
    m.answered('TEMP', 'failed', 'smmapd', Metrics.now());
    m.policyAction('success');
    const text = renderPrometheus(m.snapshot(), { startTime: 1700000000, workers: 1 });
    for (const line of text.trimEnd().split('\n')) if (!line.startsWith('#')) expect(line).toMatch(SAMPLE);
    expect(text).toContain('smmapd_answers_total{status="OK",outcome="ok",map="smmapd"} 1\n');
    expect(text).toContain('smmapd_answer_duration_seconds_bucket{le="+Inf"} 3\n');
    expect(text).toContain('smmapd_answer_duration_seconds_bucket{le="2.5"} 2\n');
    expect(text).toContain('smmapd_answer_duration_seconds_bucket{le="5"} 3\n');
    expect(text).toContain('smmapd_answer_duration_seconds_count 3\n');
    expect(text).toContain('smmapd_store_errors_total 1\n');
    expect(text).toContain('smmapd_policy_actions_total{kind="success"} 1\n');
    expect(text).toContain('smmapd_process_start_time_seconds 1700000000\n');
  });

  it('sums snapshots', () => {
    const a = new Metrics();
    const b = new Metrics();
    a.answered('OK', 'ok', 'smmapd', Metrics.now());
    b.answered('OK', 'ok', 'smmapd', Metrics.now());
    b.cache.hits = 5;
    const s = sumSnapshots([a.snapshot(), b.snapshot()]);
    expect(s.answers['OK\tok\tsmmapd']).toBe(2);
    expect(s.cacheHits).toBe(5);
    expect(s.buckets.reduce((x, y) => x + y, 0)).toBe(2);
  });

  it('map names are the client\'s: printable, and a bounded number of series', () => {
    const m = new Metrics();
    m.answered('OK', 'ok', 'we"ird}\n\x01', Metrics.now());
    for (let i = 0; i < MAX_SERIES + 50; i++) m.answered('OK', 'ok', `map${i}`, Metrics.now());
    const snap = m.snapshot();
    expect(Object.keys(snap.answers).length).toBeLessThanOrEqual(MAX_SERIES + 1);
    expect(snap.answers['OK\tok\t(other)']).toBeGreaterThan(0);
    const text = renderPrometheus(snap, { startTime: 0, workers: 1 });
    expect(text).toContain('map="we\\"ird???"');
    for (const line of text.trimEnd().split('\n')) if (!line.startsWith('#')) expect(line).toMatch(SAMPLE);
  });
});
