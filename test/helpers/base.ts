// The harness's base: where the built programs are (what package.json's bin runs), time,
// process bookkeeping, ports, the build, a bare configuration and smmapctl as a real process.
// daemon.ts starts smmapd; the peer modules (cyrus.ts, master.ts, ...) build on this file,
// which imports none of them, so there is no import cycle. Tests import each name from the
// module that defines it. Nothing here imports vitest (bench/ runs it under plain node).
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The checkout: the nearest directory above this file with smmapd's package.json (tests run
 *  from test/helpers, bench from dist/devtools/test/helpers). */
function findRoot(from: string): string {
  for (let d = from; ; d = dirname(d)) {
    const pkg = join(d, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'smmapd') return d;
    if (dirname(d) === d) throw new Error(`no smmapd package.json above ${from}`);
  }
}

export const ROOT = findRoot(__dirname);
const BIN = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin;
/** What `npm install -g .` installs as smmapd and smmapctl. */
export const SMMAPD = join(ROOT, BIN.smmapd!);
export const SMMAPCTL = join(ROOT, BIN.smmapctl!);
/** The command line that runs the built daemon (where examples say /usr/local/bin/smmapd). */
export const SMMAPD_COMMAND = `${process.execPath} ${SMMAPD}`;

// ---- time and processes -------------------------------------------------------------------

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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

/** A process's /proc/PID/stat fields after its command name (state first), which may hold blanks and parentheses. */
export function statFields(pid: number | string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** user+sys CPU of a process, in clock ticks (10 ms); `f`: its statFields() when already read. */
export function cpuTicks(pid: number | string, f = statFields(pid)): number {
  return Number(f[11]) + Number(f[12]);
}

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

/** The live direct children of `pid` (a supervisor's workers), from /proc: every thread's list. */
export function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const list = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (list !== '') kids.push(...list.split(/\s+/).map(Number));
    }
  } catch {
    return [];
  }
  return kids.filter(alive);
}

/** Everything `proc` writes to stdout and stderr (the pipes among them), as one string so far. */
export function captureOutput(proc: ChildProcess): () => string {
  let out = '';
  const add = (d: Buffer): void => {
    out += d.toString();
  };
  proc.stdout?.on('data', add);
  proc.stderr?.on('data', add);
  return () => out;
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

// ---- ports --------------------------------------------------------------------------------

/** A loopback port nobody listens on right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => res(port));
    });
  });
}

/** Until a TCP connection to 127.0.0.1:port succeeds; throws after `ms`. */
export async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const c = net.connect({ host: '127.0.0.1', port });
      c.once('connect', () => (c.destroy(), res(true)));
      c.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listening on ${port}`);
    await sleep(50);
  }
}

// ---- build, configuration, smmapctl ---------------------------------------------------------

const STAMP = join(ROOT, 'dist/.build-stamp'); // written by scripts/bundle.js too (the end of npm run build)

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * `npm run build` (tsc, then the bundles bin points at) unless dist is already newer than
 * every source file (test files run one after another, each would otherwise rebuild). Type
 * errors elsewhere in the tree do not stop tsc's emit; they are printed, and only a missing
 * program fails.
 */
export function buildOnce(): void {
  const fresh = existsSync(STAMP) && statSync(STAMP).mtimeMs >= newestMtime(join(ROOT, 'src'));
  if (!fresh) {
    const r = spawnSync('npx', ['tsc', '-p', '.'], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) console.warn(`tsc reported errors (emitted anyway):\n${r.stdout}${r.stderr}`);
    const b = spawnSync(process.execPath, [join(ROOT, 'scripts/bundle.js')], { cwd: ROOT, encoding: 'utf8' });
    if (b.status !== 0) throw new Error(`bundling failed:\n${b.stdout}${b.stderr}`);
    writeFileSync(STAMP, new Date().toISOString());
  }
  for (const p of [SMMAPD, SMMAPCTL]) if (!existsSync(p)) throw new Error(`build did not produce ${p}`);
}

/** A temp directory with a config file: `configdirectory` and `smmapd_store` inside it. */
export function tempConfig(extra = ''): { dir: string; conf: string; store: string } {
  const dir = mkdtempSync(join(tmpdir(), 'smmapd-test-'));
  const store = join(dir, 'smmapd.db');
  const conf = join(dir, 'smmapd.conf');
  writeFileSync(conf, `configdirectory: ${dir}\nsmmapd_store: ${store}\n${extra}\n`);
  return { dir, conf, store };
}

export interface CtlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `smmapctl -C conf ...args` (no -C when conf is null), with optional standard input. */
export function runCtl(conf: string | null, args: readonly string[], input?: string, timeoutMs?: number): CtlResult {
  const argv = conf === null ? [SMMAPCTL, ...args] : [SMMAPCTL, '-C', conf, ...args];
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', input: input ?? '', maxBuffer: 256 * 1024 * 1024, timeout: timeoutMs });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Like runCtl, but the command must succeed; returns its output lines. */
export function ctlOk(conf: string, args: readonly string[], input?: string): string[] {
  const r = runCtl(conf, args, input);
  if (r.code !== 0) throw new Error(`smmapctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout === '' ? [] : r.stdout.replace(/\n$/, '').split('\n');
}

/** `smmapctl -C conf ...args` as a child process, nothing awaited (`sync --every`). */
export function spawnCtl(conf: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, [SMMAPCTL, '-C', conf, ...args], options);
}

/**
 * A command without blocking this process: what takes seconds (npm, dpkg, initdb,
 * mariadb-install-db) must not hold the test worker's event loop, or vitest's own messages
 * time out after 60 s on a loaded machine. Resolves with the exit code and both outputs.
 */
export function runAsync(cmd: string, args: readonly string[], options: SpawnOptions & { input?: string } = {}): Promise<CtlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin!.end(options.input ?? '');
  });
}

/** runCtl without blocking this process (a scripted server in this process must answer it). */
export function runCtlAsync(conf: string, args: readonly string[]): Promise<CtlResult> {
  return runAsync(process.execPath, [SMMAPCTL, '-C', conf, ...args]);
}

/** Provision with one `smmapctl batch` (fast: one process, one transaction). */
export function ctlBatch(conf: string, lines: readonly string[]): void {
  ctlOk(conf, ['batch'], `${lines.join('\n')}\n`);
}
