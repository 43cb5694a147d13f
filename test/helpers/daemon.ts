// Start the real, built daemon as a process, the way an admin would.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '../..');
export const SMMAPD = join(ROOT, 'dist/cli/smmapd.js');
export const SMMAPCTL = join(ROOT, 'dist/cli/smmapctl.js');

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

/** A temp directory with a config file: `configdirectory` and `smmapd_store` inside it. */
export function tempConfig(extra = ''): { dir: string; conf: string; store: string } {
  const dir = mkdtempSync(join(tmpdir(), 'smmapd-test-'));
  const store = join(dir, 'smmapd.db');
  const conf = join(dir, 'smmapd.conf');
  writeFileSync(conf, `configdirectory: ${dir}\nsmmapd_store: ${store}\n${extra}\n`);
  return { dir, conf, store };
}

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
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RunningDaemon {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly target: string;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `smmapd -C conf --listen inet:127.0.0.1:PORT [args]`, ready when the port accepts. */
export async function startDaemon(conf: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunningDaemon> {
  const port = await freePort();
  const proc = spawn(process.execPath, [SMMAPD, '-C', conf, '--listen', `inet:127.0.0.1:${port}`, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  try {
    await Promise.race([waitForPort(port), exited.then((c) => Promise.reject(new Error(`smmapd exited ${c}: ${out}`)))]);
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
  return {
    proc,
    port,
    target: `127.0.0.1:${port}`,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}
