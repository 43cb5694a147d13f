// The --listen model's tests (listener-signals, listener-faults): the daemon on given
// addresses, its output, and a fixture store with per-test configuration files; afterwards
// every daemon is gone, none left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { killMatching, SMMAPD, sleep, waitFor } from './base';
import { makeFixture, type Fixture } from './fixture';

export interface ListenerDaemon {
  readonly proc: ChildProcess;
  /** The first address as a client dials it (`host:port` or `unix:/path`). */
  readonly target: string;
  output(): string;
  exited(): Promise<number | null>;
}

export interface ListenerOptions {
  readonly args?: readonly string[];
  /** A command the daemon runs under (e.g. `prlimit --nofile=256:256`); it must exec. */
  readonly prefix?: readonly string[];
}

/** The daemons a file's tests started: SIGKILLed after each test, checked gone. */
const daemons: ChildProcess[] = [];

/** `smmapd -C conf --listen ...`, nothing awaited. */
export function spawnListener(conf: string, listen: readonly string[], o: ListenerOptions = {}): ListenerDaemon {
  const argv = [process.execPath, SMMAPD, '-C', conf, ...listen.flatMap((l) => ['--listen', l]), ...(o.args ?? [])];
  const all = [...(o.prefix ?? []), ...argv];
  const proc = spawn(all[0]!, all.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  daemons.push(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  const first = listen[0] ?? ''; // none: the addresses are in the configuration (smmapd_listen)
  return { proc, target: first.startsWith('unix:') ? first : first.slice('inet:'.length), output: () => out, exited: () => exit };
}

/** The same, once it says it listens (not probed by connecting: that would count for -U/-T). */
export async function startListener(conf: string, listen: readonly string[], o: ListenerOptions = {}): Promise<ListenerDaemon> {
  const d = spawnListener(conf, listen, o);
  if (!(await waitFor(() => d.output().includes('listening on'), 10_000))) throw new Error(`smmapd did not start: ${d.output()}`);
  return d;
}

/**
 * The fixture store for a test file, with the hooks that make it and clean up: `fx` reads the
 * current one (made in beforeAll); `confWith` writes a configuration on it with extra lines.
 */
export function listenerFixture(): { fx: Fixture; confWith(name: string, extra: string): string } {
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
    for (const p of daemons.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
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
