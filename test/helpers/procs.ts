// Process bookkeeping for the tests that start real supervisors: find what they started,
// prove nothing is left behind, and make a missing peer fail loudly in CI.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'vitest';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Pids whose full command line contains `pattern` (pgrep -f, fixed string), never ours. */
export function pidsMatching(pattern: string): number[] {
  // pgrep takes a regular expression: escape it into a fixed string.
  const re = pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const r = spawnSync('pgrep', ['-f', re], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((p) => p > 0 && p !== process.pid && p !== r.pid && alive(p));
}

export async function waitFor(cond: () => boolean, ms: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (cond()) return true;
    if (Date.now() > end) return false;
    await sleep(stepMs);
  }
}

/** Running (a zombie waiting for a parent that never reaps it counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** SIGKILL whatever still matches (cleanup after a failed test); returns what was killed. */
export function killMatching(pattern: string): number[] {
  const left = pidsMatching(pattern);
  for (const p of left) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  return left;
}

export function haveCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

export const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * describe() for tests that need a real peer. `missing` names what is absent, or null. A
 * missing peer skips the tests on a developer's machine, and FAILS them when CI is set:
 * a green CI must mean the peers were really there.
 */
export function describeWithPeer(title: string, missing: string | null, fn: () => void): void {
  if (missing === null) {
    describe(title, fn);
  } else if (process.env.CI) {
    describe(title, () => {
      it(`needs ${missing}`, () => {
        throw new Error(`${missing} is not available here, and CI is set: install it (.ci/install-peers)`);
      });
    });
  } else {
    describe.skip(`${title} (skipped: ${missing} missing)`, fn);
  }
}

/** The first missing requirement among [ok, what] pairs, or null. */
export function firstMissing(reqs: ReadonlyArray<readonly [boolean, string]>): string | null {
  for (const [ok, what] of reqs) if (!ok) return what;
  return null;
}
