// The one way tests (and bench/) start smmapd: startSmmapd({ model, ready, ... }) runs the
// built daemon as a real process in one of its process models and returns one handle type.
// Supervisors with setup of their own (Cyrus master in master.ts, inetd-style super-servers in
// inetd.test.ts) start through here as model 'supervisor'. Nothing here imports vitest.
import { spawn, spawnSync, type ChildProcess, type StdioOptions, type SpawnSyncReturns } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { captureOutput, childrenOf, freePort, SMMAPD, waitFor, waitForPort } from './base';

/**
 * How smmapd runs:
 *  - 'listen': `smmapd --listen ADDR ...` (listener, prefork workers); `listen` gives the
 *    addresses (none: one fresh loopback port; []: the configuration's smmapd_listen);
 *  - 'stdio': one session on stdin/stdout, the inetd one-shot model (proc.stdin/stdout);
 *  - 'socket-activate': under systemd-socket-activate with the `activate` options (-l ADDR,
 *    --accept, --fdname=...; no -l: -l 127.0.0.1:PORT): the handle is the activator;
 *  - 'supervisor': `supervisor` is a super-server's whole command line (xinetd, inetd,
 *    tcpserver, Cyrus master) that starts smmapd itself on `port` (or `listen`, which here
 *    only names the address): the handle is the supervisor.
 */
export type Model = 'listen' | 'stdio' | 'socket-activate' | 'supervisor';

/**
 * How readiness is known: 'port' a TCP connection succeeds (it counts as a client: not with
 * -U/-T limits), 'log' the output says "listening on", 'none' nothing awaited.
 * Default: 'port' when there is a known port, 'log' for other listeners, 'none' for stdio.
 */
export type Ready = 'port' | 'log' | 'none';

export interface SmmapdOptions {
  readonly model?: Model;
  /** `-C conf` (left out when undefined). */
  readonly conf?: string;
  readonly listen?: readonly string[];
  /** Further arguments after -C and --listen. */
  readonly args?: readonly string[];
  readonly ready?: Ready;
  /** Added to this process's environment. */
  readonly env?: NodeJS.ProcessEnv;
  /** A command smmapd runs under (e.g. `prlimit --nofile=256:256`); it must exec. */
  readonly prefix?: readonly string[];
  /** smmapd's command line as a unit or example writes it (instead of node SMMAPD -C conf ...). */
  readonly command?: readonly string[];
  /** systemd-socket-activate's options (model 'socket-activate'). */
  readonly activate?: readonly string[];
  /** The super-server's command line (model 'supervisor'). */
  readonly supervisor?: readonly string[];
  /** The TCP port (model 'supervisor'; 'socket-activate': default a fresh one). */
  readonly port?: number;
  /** Default: stdin ignored, stdout and stderr piped (stdin piped for 'stdio'). */
  readonly stdio?: StdioOptions;
  /** The file stderr was given (stdio): output() reads it. */
  readonly stderrFile?: string;
  /** In a session of its own (a supervisor that would otherwise share our process group). */
  readonly detached?: boolean;
}

/** A started smmapd (or the supervisor or activator that runs it). */
export interface Smmapd {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** The TCP port clients dial (0: none known: a unix socket, stdio, the configuration's). */
  readonly port: number;
  /** The first address as a client dials it: `127.0.0.1:PORT` or `unix:/path` ('' for stdio). */
  readonly target: string;
  /** stdout and stderr so far (or the stderrFile). */
  output(): string;
  /** Its exit code (null: killed by a signal). */
  exited(): Promise<number | null>;
  /** It has exited already (or was killed). */
  hasExited(): boolean;
  /** Sends `signal` (default SIGTERM) unless it has exited; resolves with its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  signal(signal: NodeJS.Signals): void;
  /** Its live direct children (workers, or the smmapd processes a supervisor forked). */
  children(): number[];
}

/** Every process started here and not yet exited (stopAll: cleanup after each test). */
const started = new Set<Smmapd>();

export async function startSmmapd(o: SmmapdOptions = {}): Promise<Smmapd> {
  const model = o.model ?? 'listen';
  let listen = o.listen ?? [];
  let port = o.port ?? 0;
  if (model === 'listen' && o.listen === undefined) {
    port = await freePort();
    listen = [`inet:127.0.0.1:${port}`];
  } else if (port === 0 && model === 'socket-activate' && !(o.activate ?? []).includes('-l')) {
    port = await freePort();
  }
  const first = listen[0];
  if (first !== undefined && port === 0 && first.startsWith('inet:')) port = Number(first.slice(first.lastIndexOf(':') + 1));
  const target = first?.startsWith('unix:') ? first : first !== undefined ? first.slice('inet:'.length) : port > 0 ? `127.0.0.1:${port}` : '';

  const smmapd = o.command ?? [process.execPath, SMMAPD, ...(o.conf === undefined ? [] : ['-C', o.conf]), ...listen.flatMap((l) => ['--listen', l]), ...(o.args ?? [])];
  const argv =
    model === 'supervisor' ? [...(o.supervisor ?? [])]
    : model === 'socket-activate' ? ['systemd-socket-activate', ...((o.activate ?? []).includes('-l') ? [] : ['-l', `127.0.0.1:${port}`]), ...(o.activate ?? []), ...smmapd]
    : [...(o.prefix ?? []), ...smmapd];
  if (argv.length === 0) throw new Error('startSmmapd: no command line');
  const proc = spawn(argv[0]!, argv.slice(1), {
    env: { ...process.env, ...o.env },
    detached: o.detached ?? false,
    stdio: o.stdio ?? [model === 'stdio' ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const piped = captureOutput(proc);
  const output = o.stderrFile === undefined ? piped : (): string => readFileSync(o.stderrFile!, 'utf8');
  const exit = new Promise<number | null>((r) => {
    // its last lines may still be in the pipes at 'exit': wait for them ('close'), but not for
    // a child that outlived it and holds them (a killed primary's workers)
    proc.once('exit', (code) => {
      const t = setTimeout(() => r(code), 1000);
      proc.once('close', () => (clearTimeout(t), r(code)));
    });
    proc.once('error', () => r(null)); // could not be spawned: the readiness wait reports it
  });
  const d: Smmapd = {
    proc,
    pid: proc.pid ?? 0,
    port,
    target,
    output,
    exited: () => exit,
    hasExited: () => proc.exitCode !== null || proc.signalCode !== null,
    stop: async (signal = 'SIGTERM') => {
      d.signal(signal);
      return exit;
    },
    signal: (signal) => {
      if (!d.hasExited()) proc.kill(signal);
    },
    children: () => childrenOf(proc.pid ?? 0),
  };
  started.add(d);
  void exit.then(() => started.delete(d));

  const ready = o.ready ?? (model === 'stdio' ? 'none' : port > 0 ? 'port' : 'log');
  const died = exit.then((c) => Promise.reject(new Error(`exited ${c}`)));
  died.catch(() => undefined);
  try {
    if (ready === 'port') await Promise.race([waitForPort(port), died]);
    if (ready === 'log') {
      const said = waitFor(() => output().includes('listening on'), 10_000).then((ok) => {
        if (!ok) throw new Error('did not say it listens within 10 s');
      });
      await Promise.race([said, died]);
    }
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`smmapd (${model}) did not start: ${(e as Error).message}; it said: ${output()}`);
  }
  return d;
}

/** Stop whatever startSmmapd started and is still running; the handles stopped. */
export async function stopAll(signal: NodeJS.Signals = 'SIGKILL'): Promise<Smmapd[]> {
  const left = [...started];
  await Promise.all(left.map((d) => d.stop(signal)));
  return left;
}

/** The stdio (inetd) model once: `smmapd ...args` with `input` on stdin, run to its exit. */
export function runSmmapd(args: readonly string[], input: string | Buffer, timeoutMs = 10_000): SpawnSyncReturns<Buffer> {
  return spawnSync(process.execPath, [SMMAPD, ...args], { input, timeout: timeoutMs });
}
