// A private Cyrus 3.6 Murder (mupdate master, backends be1 and be2, one frontend), built by
// murder/start.sh in a network namespace of its own (the recipe and its pitfalls are in that
// script's comments; it is the project's copy of issue 17's reference recipe). Everything in
// the namespace is reached from the test through unix sockets, which no namespace hides: a
// forwarder inside it relays each Cyrus smmapd, and our daemons listen on unix sockets there.
// Also here (ported from the reference's murder.py): the reaper of the backend Cyrus smmapd
// processes that a frontend's proxied lookup leaves spinning (Cyrus 3.6, see start.sh), and
// stopping, starting, hanging and resuming one server by its master's pid.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { childrenOf, cpuTicks, haveCommand, isRoot, sleep, statFields, waitFor } from './base';
import { query } from './socketmap';

const HERE = join(__dirname, 'murder');
const BIN = '/usr/lib/cyrus/bin';
export const ADDR = { mup: '127.0.0.10', be1: '127.0.0.11', be2: '127.0.0.12', fe: '127.0.0.20' } as const;
export type Server = keyof typeof ADDR;

/** Why the Murder cannot be built here, or null. */
export function murderMissing(): string | null {
  if (!isRoot()) return 'root (network namespace)';
  if (!existsSync(`${BIN}/imapd`)) return 'Cyrus 3.6 (cyrus-imapd)';
  if (!existsSync(`${BIN}/mupdate`)) return 'cyrus-murder';
  if (!haveCommand('ip')) return 'ip (iproute2)';
  if (!haveCommand('python3')) return 'python3';
  return null;
}

export interface Murder {
  readonly ns: string;
  readonly dir: string;
  /** `unix:` targets of the Cyrus smmapd of each server (one key per connection: see cyrus()). */
  readonly smmap: Readonly<Record<'fe' | 'be1' | 'be2', string>>;
  /** argv run inside the namespace. */
  exec(argv: readonly string[]): string[];
  /** One key asked of a Cyrus smmapd (one connection), then the spinning backend ones reaped. */
  cyrus(server: 'fe' | 'be1' | 'be2', key: string): Promise<string>;
  /** SIGHUP every master whose smmapd service master closed ("too many failures"). */
  reopenSmmap(): void;
  stop(server: Server): Promise<void>;
  start(server: Server): Promise<void>;
  /** SIGSTOP one server's master, then its children; resume() undoes it (close() too). */
  hang(server: Server): void;
  resume(): void;
  /** Everything down: forwarder, resumed processes, stop.sh. Never throws. */
  close(): Promise<void>;
}

const env = (ns: string, dir: string): NodeJS.ProcessEnv => ({ ...process.env, MURDER_NS: ns, MURDER_DIR: dir });

export interface Ran { readonly status: number | null; readonly stdout: string; readonly stderr: string }

/** argv run to its end without blocking the event loop (vitest's worker must stay responsive). */
export function run(argv: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const p = spawn(argv[0]!, argv.slice(1), { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    p.on('error', (e) => { clearTimeout(timer); resolve({ status: null, stdout, stderr: stderr + e.message }); });
    p.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

function masterPid(dir: string, s: Server): number {
  return Number(readFileSync(join(dir, s, 'run', 'master.pid'), 'utf8').trim());
}

const TICK = 100; // USER_HZ on Linux

/** {pid: cpu ticks} of busy (state R, stdin a socket) Cyrus smmapd processes of be1/be2. */
function backendSmmapds(ns: string, dir: string): Map<number, number> {
  const out = new Map<number, number>();
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean);
  for (const p of pids) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (!cmd.some((c) => c.endsWith('/smmapd'))) continue;
      if (!cmd.some((c) => c.startsWith(`${dir}/be1/`) || c.startsWith(`${dir}/be2/`))) continue;
      const st = statFields(p);
      if (st[0] === 'R' && readlinkSync(`/proc/${p}/fd/0`).startsWith('socket:')) out.set(Number(p), cpuTicks(p, st));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Kill the looping ones: running in both samples, 10 ms of CPU or more within 100 ms. */
async function reap(ns: string, dir: string): Promise<void> {
  const a = backendSmmapds(ns, dir);
  await sleep(100);
  for (const [p, t] of backendSmmapds(ns, dir)) {
    if (a.has(p) && ((t - a.get(p)!) * 1000) / TICK >= 10) {
      try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    }
  }
}

// Relays unix:DIR/fwd-NAME.sock to HOST:12345 inside the namespace, for each NAME=HOST argument.
const FORWARDER = `
const net = require('net'); const [dir, ...pairs] = process.argv.slice(1);
for (const p of pairs) {
  const [name, host] = p.split('=');
  net.createServer((c) => {
    const u = net.connect(12345, host);
    c.pipe(u); u.pipe(c);
    c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
  }).listen(dir + '/fwd-' + name + '.sock');
}`;

/** Build the Murder (about 10 s): namespace `ns`, directory `dir` (under /tmp, removed by close()). */
export async function startMurder(ns: string, dir: string): Promise<Murder> {
  const r = await run([join(HERE, 'start.sh')], { env: env(ns, dir), timeoutMs: 120_000 });
  const stop = (): Promise<Ran> => run([join(HERE, 'stop.sh')], { env: env(ns, dir), timeoutMs: 60_000 });
  const stopNow = (): void => void spawnSync(join(HERE, 'stop.sh'), [], { env: env(ns, dir), timeout: 60_000 });
  if (r.status !== 0) {
    await stop();
    throw new Error(`murder/start.sh failed (${r.status}): ${r.stderr.split('\n').slice(-6).join('\n')}`);
  }
  const fwd: ChildProcess = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', FORWARDER, dir, `fe=${ADDR.fe}`, `be1=${ADDR.be1}`, `be2=${ADDR.be2}`], { stdio: 'ignore' });
  const smmap = { fe: `unix:${dir}/fwd-fe.sock`, be1: `unix:${dir}/fwd-be1.sock`, be2: `unix:${dir}/fwd-be2.sock` };
  await waitFor(() => ['fe', 'be1', 'be2'].every((n) => existsSync(`${dir}/fwd-${n}.sock`)), 10_000);
  let hung: number[] = [];
  const exec = (argv: readonly string[]): string[] => ['ip', 'netns', 'exec', ns, ...argv];
  const m: Murder = {
    ns, dir, smmap, exec,
    async cyrus(server, key) {
      let reply: string;
      try {
        [reply] = (await query(smmap[server], [key], 'cyrus', 8000)) as [string];
      } catch (e) {
        reply = `(${(e as Error).message})`;
      }
      if (server === 'fe') await reap(ns, dir);
      return reply;
    },
    reopenSmmap() {
      for (const s of ['be1', 'be2', 'fe'] as const) {
        const listening = spawnSync('ip', ['netns', 'exec', ns, 'ss', '-ltnH', `src ${ADDR[s]}:12345`], { encoding: 'utf8' }).stdout.includes('LISTEN');
        if (!listening) try { process.kill(masterPid(dir, s), 'SIGHUP'); } catch { /* not running */ }
      }
    },
    async stop(server) {
      const pid = masterPid(dir, server);
      process.kill(pid, 'SIGTERM');
      await waitFor(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, 10_000);
    },
    async start(server) {
      const s = await run([join(HERE, 'start.sh'), 'up', server], { env: env(ns, dir), timeoutMs: 60_000 });
      if (s.status !== 0) throw new Error(`start.sh up ${server}: ${s.stderr}`);
    },
    hang(server) {
      const mp = masterPid(dir, server);
      hung = [mp];
      process.kill(mp, 'SIGSTOP'); // first: a stopped master forks no new child
      for (const c of childrenOf(mp)) {
        hung.push(c);
        try { process.kill(c, 'SIGSTOP'); } catch { /* gone */ }
      }
    },
    resume() {
      for (const p of hung.splice(0)) try { process.kill(p, 'SIGCONT'); } catch { /* gone */ }
    },
    async close() {
      if (closed) return;
      closed = true;
      process.off('exit', atExit);
      try { m.resume(); } catch { /* never mind */ }
      fwd.kill('SIGKILL');
      await stop();
    },
  };
  // A test process that ends without its afterAll still takes the Murder down (synchronously).
  let closed = false;
  const atExit = (): void => {
    if (closed) return;
    closed = true;
    try { m.resume(); } catch { /* never mind */ }
    fwd.kill('SIGKILL');
    stopNow();
  };
  process.once('exit', atExit);
  return m;
}

/** Whether `path` is a unix socket (our daemon is listening once it exists). */
export function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}
