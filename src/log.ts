// Logging. Errors are always logged; answers are audited (Cyrus's auditlog) when asked.
// Where lines go is chosen by `smmapd_log`: stderr (systemd/journald, Cyrus master -L),
// a file, or syslog. Lines are written synchronously so nothing is lost at exit.
import { appendFileSync, writeSync } from 'node:fs';
import type { LogLevel } from './config';

const RANK: Record<LogLevel, number> = { error: 3, warning: 4, notice: 5, info: 6, debug: 7 };

export interface Logger {
  error(msg: string): void;
  warning(msg: string): void;
  notice(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  enabled(level: LogLevel): boolean;
}

export type Sink = (level: LogLevel, line: string) => void;

/** stderr; under journald (JOURNAL_STREAM set) each line carries its syslog priority as `<N>`. */
export function stderrSink(): Sink {
  const journal = process.env.JOURNAL_STREAM !== undefined;
  return (level, line) => {
    const text = journal ? `<${RANK[level]}>${line}\n` : `${line}\n`;
    try {
      writeSync(2, text);
    } catch {
      // stderr gone (supervisor closed it): nothing better to do
    }
  };
}

export function fileSink(path: string): Sink {
  return (level, line) => {
    try {
      appendFileSync(path, `${new Date().toISOString()} ${line}\n`);
    } catch {
      stderrSink()(level, line);
    }
  };
}

export function makeLogger(ident: string, threshold: LogLevel, sink: Sink): Logger {
  const max = RANK[threshold];
  const emit = (level: LogLevel) => (msg: string): void => {
    if (RANK[level] <= max) sink(level, `${ident}[${process.pid}]: ${level}: ${msg}`);
  };
  return {
    error: emit('error'),
    warning: emit('warning'),
    notice: emit('notice'),
    info: emit('info'),
    debug: emit('debug'),
    enabled: (level) => RANK[level] <= max,
  };
}
