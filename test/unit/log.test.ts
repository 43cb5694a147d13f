import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { LogLevel } from '../../src/config';
import { auditField, chooseDestination, logLine, LogRateLimiter, makeLogger, MAX_LOG_LINE, syslogSink, type Sink } from '../../src/log';

const dir = mkdtempSync(join(tmpdir(), 'smmapd-log-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function memory(): Sink & { lines: Array<[LogLevel, string]> } {
  const lines: Array<[LogLevel, string]> = [];
  return { lines, write: (level, line) => void lines.push([level, line]) };
}

describe('chooseDestination', () => {
  const saved = process.env.JOURNAL_STREAM;
  afterAll(() => {
    if (saved !== undefined) process.env.JOURNAL_STREAM = saved;
  });

  it('an explicit smmapd_log wins', () => {
    delete process.env.JOURNAL_STREAM;
    expect(chooseDestination('syslog', 'listener')).toEqual({ kind: 'syslog' });
    expect(chooseDestination('stderr', 'cyrus-master')).toEqual({ kind: 'stderr' });
    expect(chooseDestination('/var/log/smmapd.log', 'stdio')).toEqual({ kind: 'file', path: '/var/log/smmapd.log' });
  });

  it('defaults: syslog under Cyrus master and inetd, stderr for --listen and systemd', () => {
    delete process.env.JOURNAL_STREAM;
    expect(chooseDestination('', 'cyrus-master')).toEqual({ kind: 'syslog' });
    expect(chooseDestination('', 'stdio')).toEqual({ kind: 'syslog' });
    expect(chooseDestination('', 'listener')).toEqual({ kind: 'stderr' });
    expect(chooseDestination('', 'systemd')).toEqual({ kind: 'stderr' });
  });
});

describe('makeLogger', () => {
  it('drops lines below the threshold, never errors; audit lines ignore the threshold; configure() changes both', () => {
    const sink = memory();
    const log = makeLogger('error', sink, { enabled: true, level: 'notice' });
    log.info('i');
    log.notice('n');
    log.error('e');
    log.audit('a');
    expect(sink.lines).toEqual([['error', 'e'], ['notice', 'a']]);
    log.configure({ threshold: 'info', audit: false, auditLevel: 'info' });
    log.info('i2');
    log.audit('a2');
    log.debug('d');
    expect(sink.lines.slice(2)).toEqual([['info', 'i2']]);
    expect(log.enabled('info')).toBe(true);
    expect(log.enabled('debug')).toBe(false);
  });
});

describe('one line per record, whatever it holds (issue 13: forged lines)', () => {
  it('escapes control characters, C1 and the Unicode line separators; clips', () => {
    expect(logLine('x\nsmmapd[1]: error: FORGED')).toBe('x\\x0asmmapd[1]: error: FORGED');
    expect(logLine('a\r\tb\x00\x1b[31m\x7f\x9b2J\u2028\u2029')).toBe('a\\x0d\\x09b\\x00\\x1b[31m\\x7f\\x9b2J\\u2028\\u2029');
    expect(logLine('plain text, é and 😀 <fred@example.com>')).toBe('plain text, é and 😀 <fred@example.com>');
    expect(logLine('y'.repeat(MAX_LOG_LINE + 10))).toBe(`${'y'.repeat(MAX_LOG_LINE)}...`);
  });
  it('every level and the audit lines go through it: a newline never starts a line of its own', () => {
    const sink = memory();
    const log = makeLogger('debug', sink, { enabled: true, level: 'notice' });
    // ldapts' own message: "Socket error. ...\nread ECONNRESET"
    log.error('ldap: ldap://h:389 failed: Socket error. Message type: SearchRequest (0x63)\nread ECONNRESET');
    log.notice('policy protocol error from 1.2.3.4:5: request=x\nsmmapd[1]: error: FORGED, not smtpd_access_policy');
    log.audit('auditlog: failed userid=<\n>');
    expect(sink.lines.map(([, l]) => l.includes('\n'))).toEqual([false, false, false]);
    expect(sink.lines[0]![1]).toMatch(/\(0x63\)\\x0aread ECONNRESET$/);
  });
});

describe('auditField', () => {
  it('escapes control characters, angle brackets and backslashes; clips long keys', () => {
    expect(auditField('fred@example.com')).toBe('fred@example.com');
    expect(auditField('a\x00b\x1f<c>\\')).toBe('a\\x00b\\x1f\\x3cc\\x3e\\x5c');
    expect(auditField('x'.repeat(600))).toBe(`${'x'.repeat(512)}...`);
    expect(auditField('frÉd')).toBe('frÉd');
  });
});

describe('syslogSink', () => {
  it('feeds one `<PRI>text` line per record to one logger child, with ident, pid and socket', async () => {
    const out = join(dir, 'logger.out');
    const fake = join(dir, 'fake-logger');
    writeFileSync(fake, `#!/bin/sh\necho "ARGS $*" > ${out}\ncat >> ${out}\n`);
    chmodSync(fake, 0o755);
    const sink = syslogSink({ ident: 'smmap', facility: 'local6', socket: '/run/x.sock', program: fake });
    sink.write('notice', 'first');
    sink.write('error', 'second\nline');
    await sink.close!();
    // The child writes after we close its stdin: wait for its lines, not a fixed time (a busy CI).
    for (let i = 0; i < 100 && !(existsSync(out) && readFileSync(out, 'utf8').includes('second line')); i++) await new Promise((r) => setTimeout(r, 50));
    const text = readFileSync(out, 'utf8').split('\n');
    expect(text[0]).toBe(`ARGS --socket-errors=off --prio-prefix --id=${process.pid} -t smmap -p local6.notice -u /run/x.sock`);
    expect(text.slice(1, 3)).toEqual(['<181>first', '<179>second line']);
  });
});

describe('LogRateLimiter', () => {
  afterEach(() => void vi.useRealTimers());

  it('keeps the first few per key per window, then reports once how many were left out', () => {
    vi.useFakeTimers();
    const reports: string[] = [];
    const rl = new LogRateLimiter(3, 60_000, (k, n) => void reports.push(`${k}:${n}`));
    const allowed = Array.from({ length: 10 }, () => rl.allow('10.0.0.1')).filter(Boolean).length;
    expect(allowed).toBe(3);
    expect(rl.allow('10.0.0.2')).toBe(true); // another peer has its own budget
    expect(reports).toEqual([]);
    vi.advanceTimersByTime(60_000);
    expect(reports).toEqual(['10.0.0.1:7']);
    // a new window: allowed again, and a quiet window reports nothing
    expect(rl.allow('10.0.0.1')).toBe(true);
    vi.advanceTimersByTime(60_000);
    expect(reports).toEqual(['10.0.0.1:7']);
  });

  it('bounds the number of keys per window; flush() reports at once (before exit)', () => {
    vi.useFakeTimers();
    const reports: string[] = [];
    const rl = new LogRateLimiter(1, 60_000, (k, n) => void reports.push(`${k}:${n}`), 2);
    for (const k of ['a', 'b', 'c', 'd', 'e']) rl.allow(k);
    rl.flush();
    expect(reports).toEqual(['(other peers):2']);
    expect(vi.getTimerCount()).toBe(0);
  });
});
