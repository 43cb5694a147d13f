// The real Cyrus master(8) (Debian's cyrus-imapd) running our smmapd as a SERVICE, from the
// example conf/cyrus.conf line with the test's paths, address and limits swapped in. Cyrus
// refuses to run as root: master runs as cyrus:mail, so the fixture must be readable by it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CYRUS_BIN } from './cyrus';
import { alive, killMatching, pidsMatching, sleep, SMMAPD, SMMAPD_COMMAND, waitFor } from './base';
import { startSmmapd, type Smmapd } from './daemon';
import { EXAMPLE, readExample, substitute } from './fixture';

export const MASTER = join(CYRUS_BIN, 'master');

export interface MasterOptions {
  /** smmapd's configuration file. */
  readonly conf: string;
  /** Directory for master's own files (made readable by cyrus). */
  readonly dir: string;
  /** master's listen= value: `127.0.0.1:PORT` or a unix socket path. */
  readonly listen: string;
  /** Replaces the example's `-U 250 -T 60` (undefined: keep the example's). */
  readonly limits?: string;
  readonly prefork?: number;
  readonly maxchild?: number;
}

/** The daemon handle (daemon.ts) of the master, with what a master adds. */
export interface RunningMaster extends Omit<Smmapd, 'stop'> {
  readonly cyrusConf: string;
  /** Our workers: smmapd processes started by this master. */
  workers(): number[];
  /** What master -L captured of the workers' stderr. */
  log(): string;
  /** SIGTERM the master, wait for it and its workers; returns the workers left after 10 s (then killed). */
  stop(): Promise<number[]>;
}

export function masterAvailable(): boolean {
  return existsSync(MASTER) && process.getuid?.() === 0;
}

/** The conf/cyrus.conf SERVICES line with this test's command, address and limits. */
export function cyrusConfFor(o: MasterOptions): string {
  const swaps: Array<[string | RegExp, string]> = [
    [EXAMPLE.program, SMMAPD_COMMAND],
    [EXAMPLE.config, o.conf],
    [`listen="${EXAMPLE.host}:${EXAMPLE.port}"`, `listen="${o.listen}"`],
  ];
  if (o.limits !== undefined) swaps.push(['-U 250 -T 60', o.limits]);
  // every line (g): a commented example line above the service must not take the swap
  if (o.prefork !== undefined) swaps.push([/prefork=\d+/g, `prefork=${o.prefork}`]);
  if (o.maxchild !== undefined) swaps.push([/maxchild=\d+/g, `maxchild=${o.maxchild}`]);
  return substitute(readExample('cyrus.conf'), swaps);
}

export async function startMaster(o: MasterOptions): Promise<RunningMaster> {
  const cy = mkdtempSync(join(o.dir, 'cyrus-'));
  for (const d of ['conf', 'proc', 'lock']) mkdirSync(join(cy, d), { recursive: true });
  const imapd = join(cy, 'imapd.conf');
  writeFileSync(imapd, `configdirectory: ${cy}/conf\nproc_path: ${cy}/proc\nmboxname_lockpath: ${cy}/lock\npartition-default: ${cy}\n`);
  const cyrusConf = join(cy, 'cyrus.conf');
  writeFileSync(cyrusConf, cyrusConfFor(o));
  const pidFile = join(cy, 'master.pid');
  const logFile = join(cy, 'master.log');
  execFileSync('chown', ['-R', 'cyrus:mail', o.dir]);
  // in the foreground (no -d: its exit is ours to see), in a session of its own as -d would
  // make it; setpriv execs master, so the child's pid is master's
  const target = o.listen.startsWith('/') ? `unix:${o.listen}` : `inet:${o.listen}`;
  const m = await startSmmapd({
    model: 'supervisor',
    supervisor: ['setpriv', '--reuid=cyrus', '--regid=mail', '--init-groups', MASTER, '-C', imapd, '-M', cyrusConf, '-p', pidFile, '-L', logFile],
    listen: [target],
    detached: true,
    ready: 'none',
  });
  const pid = m.pid;
  const pattern = `${SMMAPD} -C ${o.conf}`;
  const workers = (): number[] => pidsMatching(pattern);
  // prefork workers up: the service is ready
  await Promise.race([waitFor(() => workers().length >= Math.min(1, o.prefork ?? 1), 10_000), m.exited()]);
  if (m.hasExited()) throw new Error(`master failed to start: ${m.output()}`);
  return {
    ...m,
    cyrusConf,
    workers,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    stop: async () => {
      if (alive(pid)) process.kill(pid, 'SIGTERM');
      await waitFor(() => !alive(pid) && workers().length === 0, 10_000);
      const left = workers();
      killMatching(pattern);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      await sleep(100);
      return left;
    },
  };
}

/** What fake-master.py reports of one scenario run (the stand-in master's view). */
export interface FakeMasterRun {
  pid: number;
  exit: number | null;
  exit_after: number;
  messages: Array<[number, number]>;
  stderr: string;
  [k: string]: unknown;
}

/** smmapd's command line `argv` under the stand-in master (fake-master.py) in `scenario`, to its end. */
export function fakeMaster(scenario: string, argv: readonly string[]): FakeMasterRun {
  const r = spawnSync('python3', [join(__dirname, 'fake-master.py'), scenario, '--', ...argv], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`fake master: ${r.stderr}`);
  return JSON.parse(r.stdout) as FakeMasterRun;
}
