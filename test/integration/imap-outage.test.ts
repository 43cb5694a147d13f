// The IMAP server goes away mid-load. Cyrus is first wedged (every process SIGSTOPped: connections
// are accepted and never answered), then killed, then started again. Meanwhile clients keep asking
// the live-store daemon and a synced replica. The live store must answer TEMP (never a wrong
// answer, never OK for a mailbox it could not see) within its deadline, and fail fast once it
// knows the server is down; the replica must keep answering right; the live store must come back
// by itself when the server does.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildOnce, ctlOk, sleep } from '../helpers/base';
import { startSmmapd, type Smmapd } from '../helpers/daemon';
import { cyrusAvailable, populate, smmapdConf, startCyrus, type Cyrus } from '../helpers/cyrus';
import { query } from '../helpers/socketmap';
import { describeWithPeer } from '../helpers/suite';

const DEADLINE_S = 2;
const EXPECTED: ReadonlyArray<readonly [string, string]> = [
  ['fred', 'OK fred'],
  ['nosuch', 'NOTFOUND Mailbox does not exist'],
  ['full', 'TEMP Over quota'],
  ['+shared.pub', 'OK +shared.pub'],
  ['+shared.nopost', 'PERM Permission denied'],
];

interface Answer {
  readonly phase: string;
  readonly key: string;
  readonly reply: string;
  readonly ms: number;
}


/** `clients` loops asking each key in turn, one connection per client, until stop() is called. */
function load(target: string, clients: number, phase: () => string): { stop: () => Promise<Answer[]> } {
  const answers: Answer[] = [];
  let running = true;
  const loop = async (offset: number): Promise<void> => {
    for (let i = offset; running; i++) {
      const [key] = EXPECTED[i % EXPECTED.length]!;
      const p = phase();
      const t0 = performance.now();
      let reply: string;
      try {
        [reply] = (await query(target, [key], 'any', 15_000)) as [string];
      } catch (e) {
        reply = `CLIENT ERROR ${(e as Error).message}`;
      }
      // An answer that straddles a change of phase belongs to neither.
      const end = phase();
      answers.push({ phase: end === p ? p : `${p}->${end}`, key, reply, ms: performance.now() - t0 });
    }
  };
  const loops = Array.from({ length: clients }, (_, i) => loop(i));
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return answers;
    },
  };
}

const expectedOf = (key: string): string => EXPECTED.find(([k]) => k === key)![1];

describeWithPeer('IMAP outage: wedged, killed, back', cyrusAvailable() ? null : 'Cyrus 3.6 (cyrus-imapd, as root)', () => {
  let cy: Cyrus;
  let dir: string;
  let live: Smmapd;
  let replica: Smmapd;
  let liveAnswers: Answer[] = [];
  let replicaAnswers: Answer[] = [];
  let recoveredAfterMs = -1;

  beforeAll(async () => {
    buildOnce();
    dir = mkdtempSync(join(tmpdir(), 'smmapd-outage-'));
    cy = await startCyrus({ unixhierarchysep: false });
    populate(cy, [
      ...['user.fred', 'user.full', 'shared.pub', 'shared.nopost'].map((create) => ({ create })),
      { setacl: ['shared.pub', 'anyone', 'lrsp'] },
      { setacl: ['shared.nopost', 'anyone', 'lrs'] },
      { setquota: ['user.full', '(STORAGE 100)'] },
      { append: ['user.full', 3000] },
      { setquota: ['user.full', '(STORAGE 1)'] },
    ]);
    live = await startSmmapd({ conf: smmapdConf(cy, dir, 'live', 'imap', [`smmapd_imap_timeout: ${DEADLINE_S}`]) });
    const replicaConf = smmapdConf(cy, dir, 'replica', 'sqlite', [`smmapd_imap_timeout: ${DEADLINE_S}`]);
    ctlOk(replicaConf, ['sync']);
    replica = await startSmmapd({ conf: replicaConf });

    let phase = 'healthy';
    const liveLoad = load(live.target, 4, () => phase);
    const replicaLoad = load(replica.target, 1, () => phase);
    await sleep(1000);
    phase = 'wedged';
    cy.freeze();
    await sleep(5000);
    phase = 'killed';
    await cy.kill();
    await sleep(2000);
    phase = 'restarting';
    const t0 = performance.now();
    await cy.resume();
    // Recovered when every key answers right again, from a fresh client.
    for (let i = 0; i < 150 && recoveredAfterMs < 0; i++) {
      const got = await query(live.target, EXPECTED.map(([k]) => k));
      if (got.every((r, j) => r === EXPECTED[j]![1])) recoveredAfterMs = performance.now() - t0;
      else await sleep(100);
    }
    phase = 'recovered';
    await sleep(1000);
    liveAnswers = await liveLoad.stop();
    replicaAnswers = await replicaLoad.stop();
    const stats = ['healthy', 'wedged', 'killed', 'restarting', 'recovered'].map((p) => {
      const ms = liveAnswers.filter((a) => a.phase === p).map((a) => a.ms);
      return `${p}: ${ms.length} answers, max ${Math.round(Math.max(0, ...ms))} ms`;
    });
    console.log(`outage: ${stats.join('; ')}; recovered ${Math.round(recoveredAfterMs)} ms after restart`);
  }, 120_000);

  afterAll(async () => {
    await live?.stop();
    await replica?.stop();
    await cy?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('healthy: the live store answers right', () => {
    const healthy = liveAnswers.filter((a) => a.phase === 'healthy');
    expect(healthy.length).toBeGreaterThan(10);
    expect(healthy.filter((a) => a.reply !== expectedOf(a.key))).toEqual([]);
  });

  it('wedged: every answer is right or TEMP, none later than the deadline, and most come at once', () => {
    const wedged = liveAnswers.filter((a) => a.phase === 'wedged');
    expect(wedged.filter((a) => a.reply !== expectedOf(a.key) && !a.reply.startsWith('TEMP '))).toEqual([]);
    expect(wedged.filter((a) => a.reply.startsWith('TEMP ') && a.reply !== 'TEMP Over quota').length).toBeGreaterThan(0);
    expect(Math.max(...wedged.map((a) => a.ms))).toBeLessThan(DEADLINE_S * 1000 + 1000);
    // Fail fast: after the first missed deadline, lookups do not each wait the deadline out.
    const sorted = wedged.map((a) => a.ms).sort((x, y) => x - y);
    expect(sorted[Math.floor(sorted.length / 2)]!).toBeLessThan(200);
    expect(wedged.length).toBeGreaterThan(50);
  });

  it('killed: every answer is right or TEMP, and fast', () => {
    const killed = liveAnswers.filter((a) => a.phase === 'killed');
    expect(killed.length).toBeGreaterThan(20);
    expect(killed.filter((a) => a.reply !== expectedOf(a.key) && !a.reply.startsWith('TEMP '))).toEqual([]);
    expect(Math.max(...killed.map((a) => a.ms))).toBeLessThan(DEADLINE_S * 1000 + 1000);
  });

  it('never a wrong answer, in any phase or between phases: right or TEMP', () => {
    expect(liveAnswers.filter((a) => a.reply !== expectedOf(a.key) && !a.reply.startsWith('TEMP '))).toEqual([]);
  });

  it('never OK for a mailbox the store could not see', () => {
    const wrongOk = liveAnswers.filter((a) => a.reply.startsWith('OK ') && expectedOf(a.key) !== a.reply);
    expect(wrongOk).toEqual([]);
  });

  it('recovers by itself once the server is back (backoff capped at 5 s)', () => {
    expect(recoveredAfterMs).toBeGreaterThanOrEqual(0);
    expect(recoveredAfterMs).toBeLessThan(10_000);
    const after = liveAnswers.filter((a) => a.phase === 'recovered');
    expect(after.length).toBeGreaterThan(10);
    expect(after.filter((a) => a.reply !== expectedOf(a.key))).toEqual([]);
  });

  it('the replica answers right throughout', () => {
    expect(replicaAnswers.length).toBeGreaterThan(20);
    expect(replicaAnswers.filter((a) => a.reply !== expectedOf(a.key))).toEqual([]);
  });
});
