// Counting on the request path, the bounded label set, and the Prometheus text prom-client
// renders from it (summing processes as the primary does).
import { describe, expect, it } from 'vitest';
import { perProcess, render } from '../../src/server/metrics-http';
import { isMonotonic, Metrics, OTHER, POLICY, sumMetrics, VERIFY, type MetricsProbes } from '../../src/server/metrics';

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/;

function valid(text: string): void {
  for (const line of text.trimEnd().split('\n')) if (line !== '' && !line.startsWith('#')) expect(line).toMatch(SAMPLE);
}

/** Every distinct value of one label in the text. */
function labelValues(text: string, label: string): Set<string> {
  return new Set([...text.matchAll(new RegExp(`[{,]${label}="([^"]*)"`, 'g'))].map((m) => m[1]!));
}

describe('metrics', () => {
  it('renders valid exposition text with a cumulative histogram per map', async () => {
    const m = new Metrics();
    m.answered('OK', 'ok', VERIFY, Metrics.now());
    m.answered('NOTFOUND', 'nonexistent', VERIFY, Metrics.now() - 3_000_000_000n); // 3 s ago
    m.answered('TEMP', 'failed', VERIFY, Metrics.now());
    m.policyAction('success');
    const text = await render([m.toJSON()]);
    valid(text);
    expect(text).toContain('smmapd_answers_total{status="OK",outcome="ok",map="smmapd"} 1\n');
    expect(text).toContain('smmapd_answer_duration_seconds_bucket{map="smmapd",le="+Inf"} 3\n');
    expect(text).toContain('smmapd_answer_duration_seconds_bucket{map="smmapd",le="2.5"} 2\n');
    expect(text).toContain('smmapd_answer_duration_seconds_bucket{map="smmapd",le="5"} 3\n');
    expect(text).toContain('smmapd_answer_duration_seconds_count{map="smmapd"} 3\n');
    expect(text).toContain('smmapd_store_errors_total 1\n');
    expect(text).toContain('smmapd_policy_actions_total{kind="success"} 1\n');
    // every policy kind is there from the start
    expect(text).toContain('smmapd_policy_actions_total{kind="norecipient"} 0\n');
    expect(text).toContain('smmapd_config_last_reload_successful 1\n');
  });

  it('sums processes sample by sample', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.answered('OK', 'ok', VERIFY, Metrics.now());
    b.answered('OK', 'ok', VERIFY, Metrics.now());
    b.cache.hits = 5;
    const text = await render([a.toJSON(), b.toJSON()]);
    expect(text).toContain('smmapd_answers_total{status="OK",outcome="ok",map="smmapd"} 2\n');
    expect(text).toContain('smmapd_cache_hits_total 5\n');
    expect(text).toContain('smmapd_answer_duration_seconds_count{map="smmapd"} 2\n');
    const summed = sumMetrics([a.toJSON().filter(isMonotonic), b.toJSON().filter(isMonotonic)]);
    expect(summed.find((x) => x.name === 'smmapd_answers_total')!.values).toEqual([{ value: 2, labels: { status: 'OK', outcome: 'ok', map: 'smmapd' } }]);
    expect(summed.some((x) => x.name === 'smmapd_connections_open')).toBe(false);
  });

  it('labels maps only by configured names, the verification, other and policy', async () => {
    const m = new Metrics();
    m.setMaps(['aliases', 'Users']);
    expect(m.labelOf('smmapd')).toBe(VERIFY);
    expect(m.labelOf('SMMAPD')).toBe(VERIFY);
    expect(m.labelOf('ALIASES')).toBe(m.labelOf('aliases'));
    expect(m.labelOf('users')).not.toBe(OTHER);
    for (let i = 0; i < 300; i++) m.answered('OK', 'ok', m.labelOf(`junk${i}`), Metrics.now());
    m.answered('OK', 'ok', m.labelOf('we"ird}\n\x01'), Metrics.now());
    m.answered('OK', 'ok', POLICY, Metrics.now());
    const text = await render([m.toJSON()]);
    valid(text);
    expect(labelValues(text, 'map')).toEqual(new Set(['smmapd', 'other', 'policy', 'aliases', 'users']));
    expect(text).toContain('smmapd_answers_total{status="OK",outcome="ok",map="other"} 301\n');
    // a map dropped at a reload keeps its series (counters do not vanish); new requests for it are other
    m.setMaps(['aliases']);
    expect(m.labelOf('users')).toBe(OTHER);
    expect(labelValues(await render([m.toJSON()]), 'map')).toEqual(new Set(['smmapd', 'other', 'policy', 'aliases', 'users']));
  });

  it("a directory's TEMP is a directory error, not a store error", async () => {
    const m = new Metrics();
    m.setMaps(['aliases']);
    m.answered('TEMP', 'failed', m.labelOf('aliases'), Metrics.now());
    m.answered('TEMP', 'failed', m.labelOf('aliases'), Metrics.now());
    m.answered('TEMP', 'failed', POLICY, Metrics.now());
    const text = await render([m.toJSON()]);
    expect(text).toContain('smmapd_store_errors_total 1\n');
    expect(text).toContain('smmapd_directory_errors_total{map="aliases"} 2\n');
  });

  it('reads directory hosts, the replica age and the reload outcome at the scrape', async () => {
    let up = true;
    const probes: MetricsProbes = {
      directories: () => [{ map: 'aliases', host: 'db1:5432', up }, { map: 'aliases', host: 'db2:5432', up: true }],
      lastSync: () => 1700000000.5,
    };
    const a = new Metrics(probes);
    const b = new Metrics(probes);
    a.reloaded(false);
    up = false;
    const text = await render([a.toJSON(), b.toJSON()]);
    // min over processes: a host one process found down is down; a failed reload anywhere is a failure
    expect(text).toContain('smmapd_directory_up{map="aliases",host="db1:5432"} 0\n');
    expect(text).toContain('smmapd_directory_up{map="aliases",host="db2:5432"} 1\n');
    expect(text).toContain('smmapd_replica_last_sync_timestamp_seconds 1700000000.5\n');
    expect(text).toContain('smmapd_config_last_reload_successful 0\n');
    expect(await render([new Metrics().toJSON()])).not.toContain('smmapd_replica_last_sync_timestamp_seconds ');
  });

  it('keeps each process its own process_* series', async () => {
    const proc = [{ name: 'process_open_fds', help: 'fds', type: 'gauge' as const, aggregator: 'sum' as const, values: [{ value: 10, labels: {} }] }];
    const text = await render([perProcess(proc, 'primary'), perProcess(proc, 'worker1'), perProcess(proc, 'worker2')]);
    expect(text).toContain('process_open_fds{process="primary"} 10\n');
    expect(text).toContain('process_open_fds{process="worker2"} 10\n');
  });
});
