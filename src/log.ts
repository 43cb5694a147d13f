// Logging. Errors are always logged; answers are audited like Cyrus's auditlog when asked
// (`smmapd_audit: yes`). Lines go where the supervisor expects them (`smmapd_log`):
//   stderr  systemd/journald (a `<N>` priority prefix when JOURNAL_STREAM is set), a
//           foreground --listen daemon, tcpserver's log pipe, Cyrus master -L;
//   syslog  Cyrus master and inetd, which give a service no log channel of its own. Node has
//           no unix datagram sockets, so a `logger` child (util-linux) is fed lines on its
//           stdin; it is started at the first line only, so a quiet process never pays for it;
//   a file  appended to, one line per write.
// The default per process model is chosen by defaultDestination() below.
import type { ChildProcess } from 'node:child_process';
import { closeSync, constants as fsc, fchownSync, fstatSync, openSync, writeSync } from 'node:fs';
import type { LogLevel } from './config';

const RANK: Record<LogLevel, number> = { error: 3, warning: 4, notice: 5, info: 6, debug: 7 };

/** syslog facility codes (RFC 5424), by the names syslog.conf uses. */
const FACILITIES: Record<string, number> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10,
  ftp: 11, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

export function facilityCode(name: string): number | undefined {
  return FACILITIES[name.toLowerCase()];
}

export interface Logger {
  error(msg: string): void;
  warning(msg: string): void;
  notice(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  enabled(level: LogLevel): boolean;
  /** An audit line: written at the audit level whenever auditing is on, whatever the threshold. */
  audit(msg: string): void;
  /** Change the threshold and audit settings (SIGHUP re-reads the configuration). */
  configure(opts: LevelOptions): void;
  /** Open the log file anew (SIGUSR2, after logrotate moved it); nothing for other destinations. */
  reopen(): void;
  /** Hand every line written so far to its destination; call before exiting. */
  close(): Promise<void>;
}

export interface LevelOptions {
  readonly threshold: LogLevel;
  readonly audit: boolean;
  readonly auditLevel: LogLevel;
}

/** Writes one line (without newline) at a level. */
export interface Sink {
  write(level: LogLevel, line: string): void;
  reopen?(): void;
  close?(): Promise<void>;
}

/** True when fd 2 is the very socket the client talks on (inetd, xinetd): never log there. */
export function stderrIsClient(): boolean {
  try {
    const err = fstatSync(2);
    const inp = fstatSync(0);
    return err.isSocket() && err.ino === inp.ino && err.dev === inp.dev;
  } catch {
    return false;
  }
}

/** True when stderr is journald's stream (JOURNAL_STREAM names its device:inode). */
function stderrIsJournal(): boolean {
  const js = process.env.JOURNAL_STREAM;
  if (js === undefined) return false;
  try {
    const st = fstatSync(2);
    return js === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

/** stderr; under journald each line carries its syslog priority as `<N>`. */
export function stderrSink(ident = 'smmapd'): Sink {
  const journal = stderrIsJournal();
  return {
    write(level, line) {
      const text = journal ? `<${RANK[level]}>${line}\n` : `${ident}[${process.pid}]: ${level}: ${line}\n`;
      try {
        writeSync(2, text);
      } catch {
        // stderr gone (supervisor closed it): nothing better to do
      }
    },
  };
}

/** Who should own a log file root opens: smmapd_user/smmapd_group, so that every process can write it. */
export interface FileOwner {
  readonly uid: number;
  readonly gid: number;
}

/** A log file mode: the daemon's user and group may read it, nobody else. */
const LOG_FILE_MODE = 0o640;

/**
 * A file, appended to through one descriptor kept open (reopened on SIGUSR2). Never through a
 * link (O_NOFOLLOW). Run as root with `owner` set, a file root owns (one we create, or one a
 * root process created before) is given to that user: the workers, which run as smmapd_user,
 * hold their own descriptor and must be able to open the file again after logrotate.
 */
export function fileSink(path: string, ident = 'smmapd', owner: FileOwner | null = null): Sink {
  let failed = false;
  let fd: number | null = null;
  const say = (level: LogLevel, line: string): void => {
    if (!stderrIsClient()) stderrSink(ident).write(level, line);
  };
  const open = (): number => {
    const f = openSync(path, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW, LOG_FILE_MODE);
    try {
      if (owner !== null && process.getuid?.() === 0 && fstatSync(f).uid === 0) fchownSync(f, owner.uid, owner.gid);
    } catch (e) {
      say('warning', `cannot give log file ${path} to uid ${owner?.uid}: ${(e as Error).message}`);
    }
    return f;
  };
  return {
    write(level, line) {
      try {
        fd ??= open();
        writeSync(fd, `${new Date().toISOString()} ${ident}[${process.pid}]: ${level}: ${line}\n`);
        failed = false;
      } catch (e) {
        // Say once on stderr (when that is not the client) that the file is unusable.
        if (!failed) say('error', `cannot write log file ${path}: ${(e as Error).message}`);
        failed = true;
        if (RANK[level] <= RANK.error) say(level, line);
      }
    },
    reopen() {
      // Keep the old descriptor when the file cannot be opened: lines still land somewhere.
      let next: number;
      try {
        next = open();
      } catch (e) {
        return say('error', `cannot reopen log file ${path}: ${(e as Error).message}; still writing to the old one`);
      }
      if (fd !== null) closeSync(fd);
      fd = next;
    },
    close() {
      if (fd !== null) closeSync(fd);
      fd = null;
      return Promise.resolve();
    },
  };
}

export interface SyslogOptions {
  readonly ident: string;
  /** Facility name (mail, daemon, local0..7). */
  readonly facility: string;
  /** The syslog socket; '' = logger's default (/dev/log). */
  readonly socket: string;
  /** The logger program; tests may point elsewhere. */
  readonly program?: string;
}

/**
 * syslog through one persistent `logger` child reading `<PRI>text` lines on stdin
 * (--prio-prefix), tagged with our ident and pid. --socket-errors=off: a host without a
 * syslog socket loses the lines silently instead of the child failing. The child is
 * detached (its own process group) so that a supervisor's signal to our group does not kill
 * it before it has passed on our last lines; it exits at EOF on its stdin, that is when we
 * exit, however we exit.
 */
export function syslogSink(opts: SyslogOptions): Sink {
  const fac = facilityCode(opts.facility) ?? FACILITIES.mail!;
  let child: ChildProcess | null = null;
  let broken = false;
  const args = ['--socket-errors=off', '--prio-prefix', `--id=${process.pid}`, '-t', opts.ident, '-p', `${opts.facility}.notice`];
  if (opts.socket !== '') args.push('-u', opts.socket);
  const fallback = (level: LogLevel, line: string): void => {
    // No logger program: errors still go somewhere, unless stderr is the client's socket.
    if (RANK[level] <= RANK.warning && !stderrIsClient()) stderrSink(opts.ident).write(level, line);
  };
  const start = (): ChildProcess | null => {
    try {
      // loaded here, at the first line logged: the stdio model pays start-up per connection
      const { spawn } = require('node:child_process') as typeof import('node:child_process');
      const c = spawn(opts.program ?? 'logger', args, { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      c.on('error', () => {
        broken = true;
        if (child === c) child = null;
      });
      c.on('exit', () => {
        if (child === c) child = null;
      });
      c.stdin!.on('error', () => undefined);
      // Neither the child nor its pipe may keep our process alive.
      c.unref();
      (c.stdin as unknown as { unref?: () => void }).unref?.();
      return c;
    } catch {
      broken = true;
      return null;
    }
  };
  return {
    write(level, line) {
      if (broken) return fallback(level, line);
      child ??= start();
      if (child === null || child.stdin === null) return fallback(level, line);
      // logger splits on newlines: keep one record per line.
      child.stdin.write(`<${fac * 8 + RANK[level]}>${line.replace(/[\r\n]+/g, ' ')}\n`);
    },
    close() {
      const c = child;
      if (c === null || c.stdin === null || c.stdin.destroyed) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        c.stdin!.end(() => {
          clearTimeout(t);
          resolve();
        });
      });
    },
  };
}

export type Destination = { kind: 'stderr' } | { kind: 'syslog' } | { kind: 'file'; path: string };

/** How smmapd was started (src/cli/smmapd.ts decides). */
export type ProcessModel = 'listener' | 'cyrus-master' | 'systemd' | 'stdio';

/**
 * `smmapd_log` when set (`stderr`, `syslog`, or a file path), else per model: syslog under
 * Cyrus master and inetd (they give us no log channel; under inetd stderr may be the client's
 * socket), stderr for a --listen daemon and under systemd (the journal). Whatever the model,
 * stderr is used when it is journald's stream, and never when it is the client's socket.
 */
export function chooseDestination(setting: string, model: ProcessModel): Destination {
  const s = setting.trim();
  if (s === 'syslog') return { kind: 'syslog' };
  if (s === 'stderr') return stderrIsClient() ? { kind: 'syslog' } : { kind: 'stderr' };
  if (s !== '') return { kind: 'file', path: s };
  if (stderrIsJournal()) return { kind: 'stderr' };
  switch (model) {
    case 'cyrus-master':
    case 'stdio':
      return { kind: 'syslog' };
    case 'listener':
    case 'systemd':
      return stderrIsClient() ? { kind: 'syslog' } : { kind: 'stderr' };
  }
}

export interface LoggerOptions extends LevelOptions {
  readonly ident: string;
  readonly destination: Destination;
  readonly syslogFacility: string;
  readonly syslogSocket: string;
  /** A log file root creates is given to this user and group (smmapd_user/smmapd_group). */
  readonly fileOwner?: FileOwner | null;
}

export function sinkFor(o: Pick<LoggerOptions, 'ident' | 'destination' | 'syslogFacility' | 'syslogSocket' | 'fileOwner'>): Sink {
  switch (o.destination.kind) {
    case 'stderr':
      return stderrSink(o.ident);
    case 'file':
      return fileSink(o.destination.path, o.ident, o.fileOwner ?? null);
    case 'syslog':
      return syslogSink({ ident: o.ident, facility: o.syslogFacility, socket: o.syslogSocket });
  }
}

/** Longest line written, in UTF-16 units: a client's key or a directory's message may be long. */
export const MAX_LOG_LINE = 4096;

/**
 * The one escaping path for every line, whatever it holds (a client's key, a directory's
 * error text, a stack): one line, each control character (C0, DEL, C1, the Unicode line and
 * paragraph separators) shown as \xNN or \uNNNN, so nothing a client or a server sends can
 * start a line of its own or drive a terminal; cut at MAX_LOG_LINE.
 */
export function logLine(msg: string): string {
  const clipped = msg.length > MAX_LOG_LINE ? `${msg.slice(0, MAX_LOG_LINE)}...` : msg;
  return clipped.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, (c) => {
    const n = c.charCodeAt(0);
    return n > 0xff ? `\\u${n.toString(16)}` : `\\x${n.toString(16).padStart(2, '0')}`;
  });
}

export function makeLogger(threshold: LogLevel, sink: Sink, audit: { enabled: boolean; level: LogLevel } = { enabled: false, level: 'notice' }): Logger {
  let max = RANK[threshold];
  let auditOn = audit.enabled;
  let auditLevel = audit.level;
  const emit = (level: LogLevel) => (msg: string): void => {
    // error has the lowest rank any threshold allows: errors are always logged.
    if (RANK[level] <= max) sink.write(level, logLine(msg));
  };
  return {
    error: emit('error'),
    warning: emit('warning'),
    notice: emit('notice'),
    info: emit('info'),
    debug: emit('debug'),
    enabled: (level) => RANK[level] <= max,
    audit: (msg) => {
      if (auditOn) sink.write(auditLevel, logLine(msg));
    },
    configure: (o) => {
      max = RANK[o.threshold];
      auditOn = o.audit;
      auditLevel = o.auditLevel;
    },
    reopen: () => sink.reopen?.(),
    close: () => sink.close?.() ?? Promise.resolve(),
  };
}

/** The logger for a process model, from the configuration. */
export function openLogger(o: LoggerOptions): Logger {
  return makeLogger(o.threshold, sinkFor(o), { enabled: o.audit, level: o.auditLevel });
}

/** Control characters and `<>` would make an audit line ambiguous: shown as \xNN. */
export function auditField(text: string, max = 512): string {
  const clipped = text.length > max ? `${text.slice(0, max)}...` : text;
  return clipped.replace(/[\x00-\x1f\x7f<>\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Bounds lines that whoever can connect could trigger (protocol errors, accept failures): per
 * key (a peer's address), the first `burst` in each window are allowed; the rest are only
 * counted, and `report` is called once per key when the window ends with how many were left
 * out. Distinct keys per window are bounded too: past `maxKeys`, new ones share one bucket.
 */
export class LogRateLimiter {
  private counts = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly burst: number,
    private readonly windowMs: number,
    private readonly report: (key: string, leftOut: number) => void,
    private readonly maxKeys = 1024,
  ) {}

  /** Count one line for `key`; true when it may be logged. */
  allow(key: string): boolean {
    if (this.timer === null) {
      this.timer = setTimeout(() => this.roll(), this.windowMs);
      this.timer.unref();
    }
    const k = this.counts.has(key) || this.counts.size < this.maxKeys ? key : '(other peers)';
    const n = (this.counts.get(k) ?? 0) + 1;
    this.counts.set(k, n);
    return n <= this.burst;
  }

  /** End the window now (before exit): report what was left out. */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.roll();
  }

  private roll(): void {
    this.timer = null;
    const counts = this.counts;
    this.counts = new Map();
    for (const [k, n] of counts) if (n > this.burst) this.report(k, n - this.burst);
  }
}
