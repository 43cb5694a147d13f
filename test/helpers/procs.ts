// Make a missing peer fail loudly in CI (describeWithPeer). The process bookkeeping (find what
// a supervisor started, prove nothing is left behind) lives in the harness (base.ts),
// re-exported here.
import { describe, it } from 'vitest';

export { alive, haveCommand, isRoot, killMatching, pidsMatching, sleep, waitFor } from './base';

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
