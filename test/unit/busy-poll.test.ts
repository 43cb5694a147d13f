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

/** Seconds spent polling across one activity and the window after it. */
async function polledAfterActivity(): Promise<number> {
  const before = busyPollSeconds();
  keepPolling();
  await turns(20);
  return busyPollSeconds() - before;
}

describe('busy polling (smmapd_busy_poll)', () => {
  it('polls for the window after activity while tasks hardly wait for a CPU, and stops under pressure', async () => {
    const file = join(dir, 'cpu');
    pressure(file, 1_000_000);
    expect(configureBusyPoll(2000, { pressureFile: file, sampleMs: 0 })).toBe(true);
    await turns(5);
    pressure(file, 1_000_010); // 10 µs of stall in ~5 ms: room
    const polled = await polledAfterActivity();
    expect(polled).toBeGreaterThanOrEqual(0.0019);
    expect(polled).toBeLessThan(0.015);
    pressure(file, 1_100_000); // tasks waited the whole time: no room
    expect(await polledAfterActivity()).toBe(0);
  });

  it('never polls without pressure information, nor when off', async () => {
    expect(configureBusyPoll(2000, { pressureFile: join(dir, 'none'), sampleMs: 0 })).toBe(false);
    expect(await polledAfterActivity()).toBe(0);
    expect(configureBusyPoll(0)).toBe(true);
    expect(await polledAfterActivity()).toBe(0);
  });
});
