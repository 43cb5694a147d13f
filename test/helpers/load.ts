// bench/smload.c, the closed-loop socketmap load generator, built once and run from tests.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './base';

export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50_us: number;
  readonly p99_us: number;
  readonly max_us: number;
  readonly ok: number;
  readonly notfound: number;
  readonly temp: number;
  readonly perm: number;
  readonly other: number;
  /** smload's own line. */
  readonly line: string;
}

export function smloadBinary(): string {
  const src = join(ROOT, 'bench', 'smload.c');
  const bin = join(tmpdir(), `smmapd-smload-${Math.floor(statSync(src).mtimeMs)}`);
  if (!existsSync(bin)) execFileSync('gcc', ['-O2', '-pthread', '-o', bin, src]);
  return bin;
}

export function parseLoad(line: string): LoadResult {
  const v: Record<string, number> = {};
  for (const m of line.matchAll(/(\w+)=([\d.]+)/g)) v[m[1]!] = Number(m[2]);
  if (v.requests === undefined) throw new Error(`smload printed no figures: ${line}`);
  return { ...(v as unknown as Omit<LoadResult, 'line'>), line: line.trim() };
}

/** `conns` clients for `seconds`; churn: a new connection for every request. */
export function runLoad(target: string, keysFile: string, conns: number, seconds: number, churn = false): Promise<LoadResult> {
  const bin = smloadBinary();
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    if (churn) env.SMLOAD_CHURN = '1';
    else delete env.SMLOAD_CHURN;
    const p = spawn(bin, [target, 'smmapd', keysFile, String(conns), String(seconds)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    // 'close', not 'exit': the figures may still be in the pipe when the process has exited
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`smload exited ${code}: ${out}`));
      try {
        resolve(parseLoad(out));
      } catch (e) {
        reject(e);
      }
    });
  });
}

export const gccAvailable = (): boolean => existsSync('/usr/bin/gcc') || existsSync('/usr/local/bin/gcc');
