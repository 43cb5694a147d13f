import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { busyPollSeconds, configureBusyPoll, keepPolling } from '../../src/busy-poll';

const dir = mkdtempSync(join(tmpdir(), 'busy-poll-'));
afterAll(() => {
  configureBusyPoll(0);
  rmSync(dir, { recursive: true, force: true });
});

/** A /proc/pressure/cpu as Linux writes it, with `some` at `total` µs. */
function pressure(file: string, total: number): void {
  writeFileSync(file, `some avg10=0.00 avg60=0.00 avg300=0.00 total=${total}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n`);
}

const turns = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Seconds spent polling across `n` activities `everyMs` apart and the 40 ms after the last. */
async function polledAcross(n: number, everyMs = 2, beforeEach = (): void => {}): Promise<number> {
  const before = busyPollSeconds();
  for (let i = 0; i < n; i++) {
    beforeEach();
    keepPolling();
    if (i < n - 1) await turns(everyMs);
  }
  await turns(40);
  return busyPollSeconds() - before;
}

describe('busy polling (smmapd_busy_poll)', () => {
  it('adapts to activity that comes back within smmapd_busy_poll, not to an isolated request, and stops under pressure', async () => {
    const file = join(dir, 'cpu');
    pressure(file, 1_000_000);
    expect(configureBusyPoll(20_000, { pressureFile: file, sampleMs: 0 })).toBe(true);
    await turns(5);
    pressure(file, 1_000_010); // 10 µs of stall in ~5 ms: room
    // a first request (no activity before it): nothing says a next one comes soon, no polling
    expect(await polledAcross(1)).toBe(0);
    // activity every ~2 ms: the window doubles from 10 µs until it covers the gap, then polls across it
    const t0 = performance.now();
    const polled = await polledAcross(12);
    expect(polled).toBeGreaterThanOrEqual(0.002);
    expect(polled).toBeLessThan((performance.now() - t0) / 1000);
    // 40 ms quiet: longer than smmapd_busy_poll, so the next request starts from no window again
    expect(await polledAcross(1)).toBe(0);
    // tasks waited for a CPU all the time: no room
    let stalled = 1_000_010;
    expect(await polledAcross(12, 2, () => pressure(file, (stalled += 100_000)))).toBe(0);
  });

  it('never polls without pressure information, nor when off', async () => {
    expect(configureBusyPoll(20_000, { pressureFile: join(dir, 'none'), sampleMs: 0 })).toBe(false);
    expect(await polledAcross(12)).toBe(0);
    expect(configureBusyPoll(0)).toBe(true);
    expect(await polledAcross(12)).toBe(0);
  });
});
