// smmapd_busy_poll: after a client's request, or a query written to a database or its reply,
// the event loop keeps polling (epoll_wait without a timeout, through a chain of
// setImmediate) for a while instead of going to sleep, so that the next message of the
// lookup (the database's reply, the client's next request) finds the process awake. On a
// VM, waking a sleeping process is the dearest part of a lookup (an interrupt through the
// hypervisor). Go's scheduler spins the same way; the kernel's own is net.core.busy_poll.
//
// How long adapts as KVM's halt polling does (halt_poll_ns): activity that comes back
// within the window keeps it; after a longer gap, but within smmapd_busy_poll, the window
// doubles (from 10 µs); a gap longer than smmapd_busy_poll (a quiet server: polling could
// not have caught it) sets it back to 0. So a closed loop of lookups polls across the
// database's round trip however long it is on this machine, and sparse requests cost
// almost nothing.
//
// Only while the CPUs have room: when tasks waited for a CPU (Linux's pressure stall
// information, /proc/pressure/cpu) for a fifth of the last 100 ms or more, polling would take
// the CPU the database or the MTA needs, so the loop sleeps as before. Without PSI (kernels
// before 4.20, or psi=0) it never polls.

import { readFileSync } from 'node:fs';

export const PRESSURE_FILE = '/proc/pressure/cpu';
/** How often the pressure is read, while there is activity (never when idle: no timer). */
const SAMPLE_MS = 100;
/** Polling stops while tasks waited for a CPU this share of the time since the last sample or more. */
const MAX_PRESSURE = 0.2;
/** The first window after a gap, ms (KVM's halt_poll_ns_grow_start). */
const START_MS = 0.01;

interface State {
  /** smmapd_busy_poll, ms: the longest window; 0: never poll. */
  maxMs: number;
  /** How long to keep polling after activity now, ms (0 to maxMs). */
  windowMs: number;
  /** The last activity (performance.now()). */
  lastAt: number;
  pressureFile: string;
  sampleMs: number;
  /** Polling until then (performance.now()). */
  until: number;
  polling: boolean;
  startedAt: number;
  sampledAt: number;
  /** PSI's `some total` (µs) at sampledAt; null: unreadable. */
  stalled: number | null;
  roomy: boolean;
  /** Time spent polling, ms (smmapd_busy_poll_seconds_total). */
  polledMs: number;
}

const s: State = {
  maxMs: 0,
  windowMs: 0,
  lastAt: -Infinity,
  pressureFile: PRESSURE_FILE,
  sampleMs: SAMPLE_MS,
  until: 0,
  polling: false,
  startedAt: 0,
  sampledAt: 0,
  stalled: null,
  roomy: false,
  polledMs: 0,
};

/**
 * Set the longest window (smmapd_busy_poll, µs; 0: off), at start and on reload. False when
 * it is on and the pressure file cannot be read: then it never polls (the caller says so in
 * the log).
 */
export function configureBusyPoll(usec: number, opts: { pressureFile?: string; sampleMs?: number } = {}): boolean {
  s.pressureFile = opts.pressureFile ?? PRESSURE_FILE;
  s.sampleMs = opts.sampleMs ?? SAMPLE_MS;
  s.stalled = usec > 0 ? stallTotal(s.pressureFile) : null;
  s.sampledAt = performance.now();
  s.roomy = false;
  s.maxMs = s.stalled === null ? 0 : usec / 1000;
  s.windowMs = 0;
  s.lastAt = -Infinity;
  return usec === 0 || s.stalled !== null;
}

/** Activity: adapt the window to the gap since the last, and keep the loop awake for it from now if the CPUs have room. */
export function keepPolling(): void {
  if (s.maxMs === 0) return;
  const now = performance.now();
  const gap = now - s.lastAt;
  s.lastAt = now;
  if (gap > s.windowMs) s.windowMs = gap > s.maxMs ? 0 : Math.min(s.maxMs, Math.max(START_MS, s.windowMs * 2));
  if (now - s.sampledAt >= s.sampleMs) sample(now);
  if (!s.roomy || s.windowMs === 0) return;
  s.until = now + s.windowMs;
  if (!s.polling) {
    s.polling = true;
    s.startedAt = now;
    setImmediate(poll);
  }
}

/** Seconds this process has spent polling. */
export function busyPollSeconds(): number {
  return s.polledMs / 1000;
}

function poll(): void {
  const now = performance.now();
  if (now < s.until) {
    setImmediate(poll);
    return;
  }
  s.polling = false;
  s.polledMs += now - s.startedAt;
}

/** Read the pressure: room means tasks waited for a CPU less than MAX_PRESSURE of the time since the last read. */
function sample(now: number): void {
  const total = stallTotal(s.pressureFile);
  s.roomy = total !== null && s.stalled !== null && (total - s.stalled) / ((now - s.sampledAt) * 1000) < MAX_PRESSURE;
  s.stalled = total;
  s.sampledAt = now;
}

/** PSI's `some ... total=N`: µs during which at least one task waited for a CPU; null when unreadable. */
function stallTotal(file: string): number | null {
  try {
    const m = /^some .*\btotal=(\d+)/m.exec(readFileSync(file, 'latin1'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
