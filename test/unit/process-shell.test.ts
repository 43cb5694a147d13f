// The process shell in-process, with process.exit stubbed and fake timers: the drain bound,
// exit hooks, exit codes and the closing of store and log; and the --listen grammar.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { makeLogger, type Logger } from '../../src/log';
import { EX_OK, EX_TEMPFAIL } from '../../src/server/exit-codes';
import { describeSpec, ListenSpecError, parseListenSpec } from '../../src/listen-spec';
import { RestartBudget } from '../../src/server/primary';
import { CLOSE_BOUND_MS, ProcessShell, type ShellService } from '../../src/server/shell';

let exits: number[];
let lines: string[];
let log: Logger;

beforeEach(() => {
  vi.useFakeTimers();
  exits = [];
  lines = [];
  log = makeLogger('debug', { write: (level, line) => void lines.push(`${level}: ${line}`) });
  // recorded, not done: the test goes on after a stubbed exit
  vi.spyOn(process, 'exit').mockImplementation(((code?: number) => void exits.push(code ?? 0)) as typeof process.exit);
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** A service whose sessions end when told; counts drains and closes. */
function fakeService(open: number): ShellService & { end(): void; drained: number; closed: number } {
  const sessions = { size: open };
  let wake = (): void => undefined;
  const idle = new Promise<void>((resolve) => (wake = resolve));
  return {
    sessions,
    idle: () => (sessions.size === 0 ? Promise.resolve() : idle),
    drained: 0,
    closed: 0,
    drainAll() {
      this.drained++;
    },
    async close() {
      this.closed++;
    },
    end() {
      sessions.size = 0;
      wake();
    },
  };
}

describe('ProcessShell', () => {
  it('drain: stops accepting, drains, exits 0 once the last connection is over, closing store and log', async () => {
    const shell = new ProcessShell(() => undefined);
    shell.useLogger(log);
    const svc = fakeService(2);
    shell.useService(svc);
    let stopped = 0;
    shell.drain('SIGTERM', () => void stopped++, 10_000);
    expect([stopped, svc.drained, shell.running]).toEqual([1, 1, false]);
    expect(lines).toContain('notice: shutting down: SIGTERM');
    // a second signal changes nothing
    shell.drain('SIGINT', () => void stopped++, 10_000);
    expect(stopped).toBe(1);
    vi.advanceTimersByTime(100);
    expect(exits).toEqual([]);
    svc.end();
    vi.advanceTimersByTime(50);
    await vi.waitFor(() => expect(exits).toEqual([EX_OK]));
    expect(svc.closed).toBe(1);
  });

  it('drain waits on the sessions, not on a timer: the last one ending lets the process exit', async () => {
    const shell = new ProcessShell(() => undefined);
    shell.useLogger(log);
    const svc = fakeService(1);
    shell.useService(svc);
    shell.drain('SIGTERM', () => undefined, 10_000);
    svc.end();
    for (let i = 0; i < 20 && exits.length === 0; i++) await Promise.resolve(); // no timer advanced
    expect(exits).toEqual([EX_OK]);
    expect(vi.getTimerCount()).toBeLessThanOrEqual(1); // the drain bound is cleared; at most the close bound is left
  });

  it('control: the signals reach the model, once wired; SIGQUIT only where the model asks', () => {
    const signals = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const;
    const before = new Map(signals.map((s) => [s, process.listeners(s)]));
    try {
      const shell = new ProcessShell(() => undefined);
      shell.useLogger(log);
      const seen: string[] = [];
      shell.control({ stop: (sig) => void seen.push(`stop ${sig}`), reload: () => void seen.push('reload'), reopenLog: () => void seen.push('reopen') });
      for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.emit(s, s);
      expect(seen).toEqual(['stop SIGTERM', 'stop SIGINT', 'reload', 'reload', 'reopen']);
      expect(process.listeners('SIGQUIT')).toEqual(before.get('SIGQUIT'));
      expect(() => shell.control({ stop: 'ignore', reload: () => undefined })).toThrow(/already/);
    } finally {
      for (const s of signals) for (const l of process.listeners(s)) if (!before.get(s)!.includes(l)) process.off(s, l as () => void);
    }
  });

  it('drain bound: connections still open are left, the process exits 0 and says how many', async () => {
    const shell = new ProcessShell(() => undefined);
    shell.useLogger(log);
    const svc = fakeService(3);
    shell.useService(svc);
    shell.drain('SIGTERM', () => undefined, 1000);
    vi.advanceTimersByTime(1000);
    await vi.waitFor(() => expect(exits).toEqual([EX_OK]));
    expect(lines).toContain('warning: 3 connection(s) still open after 1000 ms; closing them');
    expect(svc.closed).toBe(0); // the store is not closed under open sessions' feet
  });

  it('exit: hooks run once, first; a store that never closes holds the exit up only CLOSE_BOUND_MS', async () => {
    const shell = new ProcessShell(() => undefined);
    const order: string[] = [];
    shell.onExit(() => void order.push('hook'));
    shell.useService({ sessions: { size: 0 }, drainAll: () => undefined, idle: async () => undefined, close: () => new Promise<void>(() => undefined) });
    shell.exit(EX_TEMPFAIL, { why: 'test' });
    shell.exit(EX_OK);
    expect(order).toEqual(['hook']);
    expect(exits).toEqual([]);
    vi.advanceTimersByTime(CLOSE_BOUND_MS);
    expect(exits).toEqual([EX_TEMPFAIL]);
  });

  it('fatal: logs (or says it where no logger exists yet), runs the hooks, exits at once', () => {
    const said: string[] = [];
    const shell = new ProcessShell((m) => void said.push(m));
    let hooked = 0;
    shell.onExit(() => void hooked++);
    shell.fatal('no configuration', 78);
    expect([said, hooked, exits]).toEqual([['no configuration'], 1, [78]]);
    // hooks run once, however often the process is told to go
    shell.useLogger(log);
    shell.fatal('bad', EX_TEMPFAIL);
    expect(lines).toContain('error: bad');
  });
});

describe('listen specs', () => {
  it('reads inet, inet6 and unix addresses and names them back', () => {
    expect(parseListenSpec('inet:127.0.0.1:12345')).toEqual({ kind: 'inet', host: '127.0.0.1', port: 12345, proto: 'socketmap' });
    expect(parseListenSpec('inet:[::1]:25')).toEqual({ kind: 'inet', host: '::1', port: 25, proto: 'socketmap' });
    expect(parseListenSpec('inet:*:25')).toEqual({ kind: 'inet', host: '::', port: 25, proto: 'socketmap' });
    expect(parseListenSpec('unix:/run/smmapd.sock')).toEqual({ kind: 'unix', path: '/run/smmapd.sock', proto: 'socketmap' });
    expect(parseListenSpec('unix:/run/p.sock', 'policy')).toEqual({ kind: 'unix', path: '/run/p.sock', proto: 'policy' });
    expect(describeSpec(parseListenSpec('inet6:[::1]:25'))).toBe('inet:[::1]:25');
    expect(describeSpec({ kind: 'fd', fd: 3, name: 'smmapd', proto: 'socketmap' })).toBe('fd 3 (smmapd)');
  });

  it('refuses what it cannot read', () => {
    for (const bad of ['inet:127.0.0.1:0', 'inet:127.0.0.1:65536', 'tcp:1.2.3.4:5', 'unix:', '127.0.0.1:25']) {
      expect(() => parseListenSpec(bad), bad).toThrow(ListenSpecError);
    }
  });
});

describe('RestartBudget (the primary replacing workers that die)', () => {
  it('doubles the delay with each death in the window, up to a cap; gives up at the limit', () => {
    const b = new RestartBudget(10, 60_000);
    const delays = Array.from({ length: 9 }, (_, i) => b.died(i * 100));
    expect(delays).toEqual([200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
    expect(b.died(1000)).toBeNull();
  });

  it('deaths older than the window are forgotten: an occasional crash restarts at once', () => {
    const b = new RestartBudget(3, 60_000);
    expect(b.died(0)).toBe(200);
    expect(b.died(30_000)).toBe(400);
    expect(b.died(61_000)).toBe(400); // the first is out of the window
    expect(b.died(200_000)).toBe(200);
  });
});
