// smmapctl sync [--every SECS]: copy the IMAP server's mailboxes, ACLs and quota roots into the
// store in one swap (the write contract's replaceSnapshot), so the daemon can answer from a
// replica while the server is away. The reading is store/imap-snapshot.ts. A failed round
// writes nothing: the store keeps the previous snapshot; a mailbox the server refuses to
// describe does not fail the round (it is recorded as failing, its lookups answer TEMP).
import type { Config } from '../config';
import { ImapPool } from '../store/imap-pool';
import { readImapSnapshot, type Progress } from '../store/imap-snapshot';
import type { Snapshot } from '../store/store';
import type { CtlContext } from './context';
import { UsageError } from './context';
import { parseCount, stringOpt, type CommandSpec } from './spec';

export interface SyncSummary {
  readonly mailboxes: number;
  /** Mailboxes the server refused to describe (recorded as failing). */
  readonly failing: number;
  /** Murder backends that were unavailable, with how many of the failing mailboxes each holds. */
  readonly backendsDown: ReadonlyMap<string, number>;
  readonly quotaRoots: number;
  readonly acls: number;
  readonly seconds: number;
}

/** One sync round: read everything, then swap it in. */
export async function syncOnce(
  cfg: Config, pool: ImapPool, write: (snap: Snapshot) => void, progress?: Progress, log?: (msg: string) => void,
): Promise<SyncSummary> {
  const t0 = performance.now();
  const began = Date.now() / 1000;
  const snap = await readImapSnapshot(cfg, pool, progress, log);
  // the round's start: the replica is at least as fresh as that (smmapd_replica_last_sync_timestamp_seconds)
  write({ mailboxes: snap.mailboxes, quotas: snap.quotas, synced: { at: began, server: cfg.imap.server } });
  return {
    mailboxes: snap.mailboxes.length, failing: snap.failing, backendsDown: snap.backendsDown, quotaRoots: snap.quotas.length, acls: snap.acls,
    seconds: (performance.now() - t0) / 1000,
  };
}

export function summaryLine(s: SyncSummary): string {
  const down = [...s.backendsDown].map(([b, n]) => `; IMAP backend ${b} unavailable: ${n} of them`).join('');
  const failing = s.failing > 0 ? ` (${s.failing} failing: their lookups answer TEMP${down})` : '';
  return `synced ${s.mailboxes} mailboxes${failing}, ${s.quotaRoots} quota roots, ${s.acls} ACLs in ${s.seconds.toFixed(1)} s`;
}

/** Progress on stderr, only on a terminal, at most four times a second. */
function ttyProgress(): { tick: (done: number, total: number) => void; clear: () => void } {
  if (!process.stderr.isTTY) return { tick: () => undefined, clear: () => undefined };
  let last = 0;
  return {
    tick: (done, total) => {
      const now = Date.now();
      if (now - last < 250 && done < total) return;
      last = now;
      process.stderr.write(`\rsync: ${done}/${total} mailboxes`);
    },
    clear: () => process.stderr.write('\r\x1b[K'),
  };
}

function poolFor(cfg: Config, connections: number, log: (msg: string) => void): ImapPool {
  if (cfg.imap.host === '') throw new UsageError('smmapd_imap_server is not set: sync reads from an IMAP server');
  return new ImapPool({ imap: cfg.imap, size: connections, timeoutMs: cfg.imap.timeoutMs, log, quietRefusals: true });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const syncCommands: readonly CommandSpec[] = [
  {
    words: ['sync'],
    args: [],
    options: [
      { long: 'every', value: 'SECS', description: 'repeat every SECS seconds (a failed round is logged and retried)' },
      { long: 'connections', value: 'N', description: 'IMAP sessions in parallel (default smmapd_imap_pool_size)' },
    ],
    summary: 'copy mailboxes, ACLs and quota roots from the IMAP server into the store',
    details:
      'Reads smmapd_imap_server as its admin and replaces the store\'s mailboxes and quota roots\n' +
      'in one transaction (the deny list stays). STORAGE usage is known in KiB only (behaviour §3).',
    batch: false,
    async run(ctx: CtlContext, _args, opts) {
      const everyText = stringOpt(opts, 'every');
      const every = everyText === undefined ? 0 : parseCount('--every', everyText);
      if (everyText !== undefined && every < 1) throw new UsageError('--every: want at least 1 second');
      const connText = stringOpt(opts, 'connections');
      const connections = connText === undefined ? ctx.cfg.imap.poolSize : parseCount('--connections', connText);
      if (connections < 1 || connections > 64) throw new UsageError('--connections: want 1 to 64');
      const log = (msg: string): void => void process.stderr.write(`smmapctl: ${msg}\n`);
      const pool = poolFor(ctx.cfg, connections, log);
      const write = (snap: Snapshot): void => ctx.store(true).replaceSnapshot(snap);
      // smmapctl prints a command's output when it ends; a repeating sync never ends.
      const say = every === 0 ? ctx.out : (line: string): void => void process.stdout.write(`${line}\n`);
      try {
        for (;;) {
          const p = ttyProgress();
          try {
            const summary = await syncOnce(ctx.cfg, pool, write, p.tick, (msg) => { p.clear(); log(msg); });
            p.clear();
            say(summaryLine(summary));
          } catch (e) {
            p.clear();
            if (every === 0) throw e;
            log(`sync failed, store unchanged: ${(e as Error).message}`);
          }
          if (every === 0) return;
          await sleep(every * 1000);
        }
      } finally {
        await pool.close();
      }
    },
  },
];
