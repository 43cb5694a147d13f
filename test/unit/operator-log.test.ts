// What an operator sees in the log (issue 14): levels that mean something (a recovery is a
// notice, an ignored parameter a warning, a failure an error), the directory's own words,
// and a log file every process can write, reopened after logrotate.
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { fileSink } from '../../src/log';
import { SqliteAdmin } from '../../src/store/sqlite-admin';
import { SqliteStore } from '../../src/store/sqlite';
import { StoreError } from '../../src/store/store';
import { openCfTable } from '../../src/table/cf';
import { directoryReason, HostList } from '../../src/table/hosts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'smmapd-oplog-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

type Line = [string, string | undefined];

describe('levels', () => {
  it('a store that is back: notice; its failure: error', async () => {
    const path = join(dir, 's.db');
    const lines: Line[] = [];
    vi.useFakeTimers({ toFake: ['Date'] });
    onTestFinished(() => void vi.useRealTimers());
    const s = new SqliteStore(path, { retryIntervalMs: 100, log: (m, level) => lines.push([m, level]) });
    onTestFinished(() => void s.close());
    expect(() => s.mailbox('user.fred')).toThrow(StoreError);
    const admin = new SqliteAdmin(path);
    admin.transaction(() => admin.createMailbox('user.fred', 'fred\tlrs\t'));
    admin.close();
    await vi.advanceTimersByTimeAsync(150);
    expect(s.mailbox('user.fred')).not.toBeNull();
    expect(lines).toEqual([[`store unavailable: ${path}: unable to open database file`, undefined], [`store available again: ${path}`, 'notice']]);
  });

  it('a directory host that is back: notice; a parameter the table does not read: warning', async () => {
    const lines: Line[] = [];
    const down = new Set(['a']);
    const hl = new HostList('pgsql', ['a'], ['a'], (m, level) => lines.push([m, level]));
    const ask = (): Promise<string> => hl.run(async (h) => (down.has(h) ? Promise.reject(new Error('connect ECONNREFUSED')) : h));
    await expect(ask()).rejects.toThrow(StoreError);
    down.clear();
    await new Promise((r) => setTimeout(r, 300));
    expect(await ask()).toBe('a');
    expect(lines).toEqual([['pgsql: a failed: connect ECONNREFUSED', 'error'], ['pgsql: a is back', 'notice']]);
    const cf = join(dir, 't.cf');
    writeFileSync(cf, 'hosts = x\nqeury = typo\n');
    const warned: Line[] = [];
    openCfTable(cf, 'pgsql', (m, level) => warned.push([m, level]), (f) => f.str('hosts', ''));
    expect(warned).toEqual([[`${cf}:2: qeury is not used by smmapd's pgsql table (ignored)`, 'warning']]);
  });

  it('the directory\'s own words: the error class when the message alone says little', () => {
    class InvalidCredentialsError extends Error {
      override name = 'InvalidCredentialsError';
    }
    expect(directoryReason(new InvalidCredentialsError(' Code: 0x31'))).toBe('InvalidCredentialsError: Code: 0x31');
    expect(directoryReason(Object.assign(new Error('relation "alias" does not exist'), { name: 'error' }))).toBe('relation "alias" does not exist');
    expect(directoryReason(new Error('connect ECONNREFUSED 127.0.0.1:1'))).toBe('connect ECONNREFUSED 127.0.0.1:1');
  });
});

describe('log file', () => {
  it('created 0640, appended through one descriptor, reopened on request after a rename, never through a link', async () => {
    const f = join(dir, 'smmapd.log');
    const sink = fileSink(f, 'smmapd');
    sink.write('notice', 'one');
    expect(statSync(f).mode & 0o777).toBe(0o640);
    renameSync(f, `${f}.1`);
    sink.write('notice', 'two'); // still the old file until told
    sink.reopen!();
    sink.write('notice', 'three');
    await sink.close!();
    expect(readFileSync(`${f}.1`, 'utf8')).toMatch(/smmapd\[\d+\]: notice: one\n.*notice: two\n$/);
    expect(readFileSync(f, 'utf8')).toMatch(/^\S+ smmapd\[\d+\]: notice: three\n$/);
    const link = join(dir, 'link.log');
    symlinkSync(join(dir, 'target.log'), link);
    fileSink(link, 'smmapd').write('error', 'through a link'); // refused (ELOOP), said on stderr
    expect(() => statSync(join(dir, 'target.log'))).toThrow();
  });
});
