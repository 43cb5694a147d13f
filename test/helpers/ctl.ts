// Run the built smmapctl as a real process, as an admin would. Shared by every test that
// provisions a store.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, SMMAPCTL, tempConfig } from './daemon';

export { ROOT, SMMAPCTL, tempConfig };

const STAMP = join(ROOT, 'dist/.build-stamp');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * `npx tsc -p .` unless dist is already newer than every source file (test files run one
 * after another, each would otherwise rebuild). Type errors elsewhere in the tree do not
 * stop the emit; they are printed, and only a missing smmapctl.js fails.
 */
export function buildOnce(): void {
  const fresh = existsSync(STAMP) && statSync(STAMP).mtimeMs >= newestMtime(join(ROOT, 'src'));
  if (!fresh) {
    const r = spawnSync('npx', ['tsc', '-p', '.'], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) console.warn(`tsc reported errors (emitted anyway):\n${r.stdout}${r.stderr}`);
    writeFileSync(STAMP, new Date().toISOString());
  }
  if (!existsSync(SMMAPCTL)) throw new Error(`build did not produce ${SMMAPCTL}`);
}

export interface CtlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `node dist/cli/smmapctl.js -C conf ...args`, with optional standard input. */
export function runCtl(conf: string | null, args: readonly string[], input?: string): CtlResult {
  const argv = conf === null ? [SMMAPCTL, ...args] : [SMMAPCTL, '-C', conf, ...args];
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', input: input ?? '', maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Like runCtl, but the command must succeed; returns its output lines. */
export function ctlOk(conf: string, args: readonly string[], input?: string): string[] {
  const r = runCtl(conf, args, input);
  if (r.code !== 0) throw new Error(`smmapctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout === '' ? [] : r.stdout.replace(/\n$/, '').split('\n');
}

/** Provision with one `smmapctl batch` (fast: one process, one transaction). */
export function ctlBatch(conf: string, lines: readonly string[]): void {
  ctlOk(conf, ['batch'], `${lines.join('\n')}\n`);
}
