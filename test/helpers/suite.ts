// The helpers that use vitest itself (bench/ runs the others under plain node): a missing
// peer fails loudly in CI (describeWithPeer), and a file's fixture store with its hooks.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killMatching, SMMAPD, sleep } from './base';
import { stopAll } from './daemon';
import { makeFixture, type Fixture } from './fixture';

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

/**
 * The fixture store for a test file, with the hooks that make it and clean up: `fx` reads the
 * current one (made in beforeAll); `confWith` writes a configuration on it with extra lines.
 * After each test every smmapd it started is SIGKILLed and none may be left behind.
 */
export function fixtureHooks(): { fx: Fixture; confWith(name: string, extra: string): string } {
  let fx: Fixture;
  const current: Fixture = {
    get dir() {
      return fx.dir;
    },
    get conf() {
      return fx.conf;
    },
    get store() {
      return fx.store;
    },
    get keys() {
      return fx.keys;
    },
  };
  beforeAll(() => {
    fx = makeFixture();
  });
  afterEach(async () => {
    await stopAll('SIGKILL');
    await sleep(100);
    expect(killMatching(`${SMMAPD} -C ${fx.dir}`), 'smmapd processes left behind').toEqual([]);
  });
  afterAll(() => {
    rmSync(fx.dir, { recursive: true, force: true });
  });
  return {
    fx: current,
    confWith: (name, extra) => {
      const conf = join(fx.dir, name);
      writeFileSync(conf, `configdirectory: ${fx.dir}\nsmmapd_store: ${fx.store}\nunixhierarchysep: no\n${extra}\n`);
      return conf;
    },
  };
}
