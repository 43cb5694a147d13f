// A fuzzer for the policy service (issue 13): 20,000 mutated policy delegation inputs against
// the real daemon (own listener, 2 workers, default limits), each on a fresh connection,
// ended in one of four ways (left open, half-closed, reset, closed unread). Each input is
// judged by a model of the framing (SMTPD_POLICY_README and our bounds, smmapd(8) POLICY
// SERVICE) and, where the recipient and size are known, of the answer:
//   malformed  a reply that is not one `action=...` line and an empty line;
//   replies    more or fewer replies than complete valid requests before the first bad one;
//   no-close   a bad request (or the end of input) not followed by the close;
//   answer     a known recipient answered other than the store says (an accept for a
//              failure above all: never `OK`, never DUNNO for an unknown mailbox);
//   hang       nothing due arrived within the bound.
// Probes between inputs: a clean request on a new connection answered within the bound.
// At the end: the figures (inputs, violations, log lines and bytes, descriptors).
// Environment: POLICY_FUZZ_INPUTS (20000), POLICY_FUZZ_SEED (13), POLICY_FUZZ_SECONDS (840: the
// bound on the run; some 2 minutes on an idle 2-core machine, 8 under a load of 20).
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctlBatch, sleep, tempConfig } from '../helpers/base';
import { startSmmapd, type Smmapd } from '../helpers/daemon';
import { policyQuery } from '../helpers/policy';

const INPUTS = Number(process.env.POLICY_FUZZ_INPUTS ?? 20_000);
const SEED = Number(process.env.POLICY_FUZZ_SEED ?? 13);
const SECONDS = Number(process.env.POLICY_FUZZ_SECONDS ?? 840);
/** Inputs in flight at once. */
const PARALLEL = 8;
/** smmapd_max_request's default: the longest line. */
const MAX_LINE = 10_000;
const MAX_ATTRIBUTES = 256;
/** How long something due may take on a loaded machine (2 cores shared by many): a hang is longer. */
const DUE_MS = 10_000;
const PROBE_EVERY = 500;

const DENY = 'Blocked $& here $` and $$5 %s';

/** What the store says for a known recipient, by message size (null: not a byte count). */
const KNOWN: Record<string, (size: number | null) => string> = {
  '': () => 'DUNNO',
  'fred@example.test': () => 'DUNNO',
  'nosuch@example.test': (s) => (s === null ? 'DUNNO' : '550 5.1.1 Mailbox does not exist'),
  // 10 KiB limit, 8 KiB used: 2048 bytes of room
  'small@example.test': (s) => (s === null || s <= 2048 ? 'DUNNO' : '452 4.2.2 Over quota'),
  'mallory@example.test': (s) => (s === null ? 'DUNNO' : `550 5.1.1 ${DENY}`),
};
const RECIPIENTS = Object.keys(KNOWN);

/** mulberry32: a small seeded PRNG, so that a failing input can be made again. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Ending = 'open' | 'half' | 'reset' | 'close';

interface FuzzInput {
  readonly data: Buffer;
  readonly ending: Ending;
  /** Write in pieces of at most this many bytes (0: one write). */
  readonly chunk: number;
  readonly ops: string[];
}

class Gen {
  constructor(private readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  bytes(n: number): Buffer {
    return Buffer.from(Array.from({ length: n }, () => this.int(256)));
  }

  size(ops: string[]): string {
    if (!this.chance(0.25)) return String(this.pick([0, 1, 1000, 2048, 2049, 10240, 10241, 99999999]));
    const v = this.pick(['', '-1', '+5', '1.5', '1e3', ' 5', 'abc', '0x10', '9'.repeat(16), '9'.repeat(400), '1000000000000000', '9007199254740993', '0000000000000000000001', '\u0661\u0662']);
    ops.push(`size=${JSON.stringify(v.slice(0, 20))}`);
    return v;
  }

  recipient(ops: string[]): string {
    if (!this.chance(0.3)) return this.pick(RECIPIENTS);
    const base = this.pick(RECIPIENTS);
    const v = this.pick([
      () => base.toUpperCase(),
      () => `${base}\x00x`,
      () => `${base}\x1b[31m`,
      () => `<${base}>`,
      () => `${base}@@`,
      () => `fred+${'a'.repeat(this.int(MAX_LINE))}@example.test`,
      () => `caf\u00e9@example.test`,
      () => `\u{1f600}@example.test`,
      () => `${base}\\`,
      () => `"${base}"`,
      () => `user.fred`,
      () => `+shared.open@example.test`,
      () => `%s$&$1@example.test`,
      () => this.bytes(1 + this.int(40)).toString('latin1'),
    ])();
    ops.push('recipient*');
    return v;
  }

  /** One request as Postfix writes it, sometimes changed at the attribute level. */
  request(ops: string[]): string {
    const attrs: Array<[string, string]> = [
      ['request', 'smtpd_access_policy'],
      ['protocol_state', this.pick(['RCPT', 'END-OF-DATA', 'DATA', 'VRFY'])],
      ['protocol_name', 'ESMTP'],
      ['client_address', '192.0.2.1'],
      ['sender', 'tester@client.test'],
      ['recipient', this.recipient(ops)],
      ['size', this.size(ops)],
    ];
    if (this.chance(0.3)) {
      const k = this.int(10);
      ops.push(`attr${k}`);
      switch (k) {
        case 0: attrs.splice(this.int(attrs.length), 1); break; // drop one (request= too)
        case 1: attrs[0] = ['request', this.pick(['', 'SMTPD_ACCESS_POLICY', 'junk', 'smtpd_access_policy '])]; break;
        case 2: attrs.push([this.pick(['x', 'recipient', 'size', 'request']), this.pick(['', 'y', 'fred@example.test', '0'])]); break;
        case 3: attrs.splice(this.int(attrs.length + 1), 0, ['', 'no name']); break; // `=no name`
        case 4: for (let i = 0; i < MAX_ATTRIBUTES + this.pick([-10, -7, -6, 0, 1, 50]); i++) attrs.push([`x${i}`, '1']); break;
        case 5: attrs.push(['long', 'z'.repeat(this.pick([100, MAX_LINE - 10, MAX_LINE - 6, MAX_LINE + 5, 3 * MAX_LINE]))]); break;
        case 6: return `${attrs.map(([a, b]) => (a === '' ? `=${b}` : `${a}=${b}`)).join('\r\n')}\r\n\r\n`; // CRLF
        case 7: return `${attrs.map(([a, b]) => `${a}=${b}`).join('\n')}\nno equals sign\n\n`;
        case 8: return '\n'; // an empty request
        default: attrs.push([`a${this.int(100)}`, this.bytes(this.int(30)).toString('latin1').replace(/\n/g, '')]); break;
      }
    }
    return `${attrs.map(([a, b]) => (a === '' ? `=${b}` : `${a}=${b}`)).join('\n')}\n\n`;
  }

  input(): FuzzInput {
    const ops: string[] = [];
    const n = this.chance(0.6) ? 1 : 1 + this.int(this.chance(0.9) ? 8 : 40);
    let data = Buffer.from(Array.from({ length: n }, () => this.request(ops)).join(''), 'latin1');
    if (this.chance(0.08)) {
      data = Buffer.from(this.pick(['GET / HTTP/1.0\r\n\r\n', '12:smmapd fred,', '\x16\x03\x01\x02\x00', '\n\n\n', '=\n\n', 'request=smtpd_access_policy']), 'latin1');
      ops.push('garbage');
    }
    // byte-level mutations
    if (this.chance(0.25)) {
      const b = [...data];
      for (let k = 1 + this.int(4); k > 0 && b.length > 0; k--) {
        const at = this.int(b.length);
        const op = this.int(6);
        ops.push(['flip', 'set', 'insert', 'delete', 'dup', 'cut'][op]!);
        if (op === 0) b[at] = b[at]! ^ (1 << this.int(8));
        else if (op === 1) b[at] = this.pick([0x00, 0x0a, 0x0d, 0x3d, 0x20, 0x7f, 0x80, 0xff]);
        else if (op === 2) b.splice(at, 0, ...this.bytes(1 + this.int(8)));
        else if (op === 3) b.splice(at, 1 + this.int(8));
        else if (op === 4) b.splice(at, 0, ...b.slice(at, at + 1 + this.int(40)));
        else b.length = at;
      }
      data = Buffer.from(b);
    }
    const ending = this.pick<Ending>(['open', 'open', 'half', 'reset', 'close']);
    const chunk = this.chance(0.3) ? 1 + this.int(64) : 0;
    return { data, ending, chunk, ops };
  }
}

interface Expected {
  /** The replies due: known text, or null (any well-formed action but OK). */
  readonly replies: Array<string | null>;
  /** The server must close: a bad request, or (half-closed) the end of input. */
  readonly closes: boolean;
}

/** The model: what smmapd --policy must answer to `data` (policy-session.ts as specified). */
function expected(data: Buffer, halfClosed: boolean): Expected {
  const replies: Array<string | null> = [];
  let attrs = 0;
  let request = '';
  let recipient: string | null = null;
  let size: string | null = null;
  let start = 0;
  for (;;) {
    const nl = data.indexOf(10, start);
    if (nl < 0) {
      if (data.length - start > MAX_LINE) return { replies, closes: true };
      return { replies, closes: halfClosed };
    }
    let end = nl;
    if (end > start && data[end - 1] === 13) end--;
    if (end - start > MAX_LINE) return { replies, closes: true };
    const line = data.subarray(start, end);
    start = nl + 1;
    if (line.length === 0) {
      if (attrs === 0 || request !== 'smtpd_access_policy') return { replies, closes: true };
      replies.push(answerOf(recipient, size));
      attrs = 0;
      request = '';
      recipient = size = null;
      continue;
    }
    const eq = line.indexOf(0x3d);
    if (eq <= 0 || ++attrs > MAX_ATTRIBUTES) return { replies, closes: true };
    const name = line.toString('latin1', 0, eq);
    const value = line.toString('latin1', eq + 1);
    if (name === 'request') request = value;
    else if (name === 'recipient') recipient = value;
    else if (name === 'size') size = value;
  }
}

function answerOf(recipient: string | null, size: string | null): string | null {
  const known = KNOWN[recipient ?? ''];
  if (known === undefined) return null;
  if (recipient === null || recipient === '') return 'DUNNO';
  const s = size ?? '0';
  const n = /^\d+$/.test(s) ? (Number(s) > Number.MAX_SAFE_INTEGER ? Infinity : Number(s)) : null;
  return known(n);
}

interface Outcome {
  readonly got: Buffer;
  readonly closed: boolean;
  readonly timedOut: boolean;
}

/** Run one input on a fresh connection; resolve once what is due arrived, or the bound passed. */
function runInput(port: number, inp: FuzzInput, due: (got: Buffer, closed: boolean) => boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const parts: Buffer[] = [];
    let closed = false;
    let settled = false;
    let timer: NodeJS.Timeout | null = null;
    const finish = (timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      sock.destroy();
      resolve({ got: Buffer.concat(parts), closed, timedOut });
    };
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => finish(true), DUE_MS);
    };
    sock.on('error', () => {
      closed = true;
      if (inp.ending === 'reset' || inp.ending === 'close') finish(false);
    });
    sock.on('data', (d: Buffer) => {
      parts.push(d);
      arm();
      if (due(Buffer.concat(parts), closed)) finish(false);
    });
    sock.on('end', () => {
      closed = true;
      if (due(Buffer.concat(parts), closed)) finish(false);
    });
    sock.on('close', () => {
      closed = true;
      finish(false);
    });
    sock.once('connect', async () => {
      arm();
      if (inp.chunk === 0) sock.write(inp.data);
      else {
        for (let i = 0; i < inp.data.length && !sock.destroyed; i += inp.chunk) {
          sock.write(inp.data.subarray(i, i + inp.chunk));
          if (i % (inp.chunk * 16) === 0) await sleep(0);
        }
      }
      if (inp.ending === 'half') sock.end();
      else if (inp.ending === 'reset') setImmediate(() => (sock.resetAndDestroy(), finish(false)));
      else if (inp.ending === 'close') sock.end(() => finish(false));
      else if (due(Buffer.concat(parts), closed)) finish(false);
    });
  });
}

/** Split the replies: `action=TEXT\n\n` each; the rest (an incomplete one) apart. */
function parseReplies(buf: Buffer): { replies: string[]; bad: string | null; rest: string } {
  const text = buf.toString('latin1');
  const replies: string[] = [];
  let i = 0;
  for (;;) {
    const e = text.indexOf('\n\n', i);
    if (e < 0) break;
    const one = text.slice(i, e);
    if (!/^action=[^\n\r\x00-\x1f\x7f]+$/.test(one)) return { replies, bad: JSON.stringify(one.slice(0, 120)), rest: '' };
    replies.push(one.slice('action='.length));
    i = e + 2;
  }
  return { replies, bad: null, rest: text.slice(i) };
}

/** The processes of the daemon: the primary and its workers (by their parent pid in /proc). */
function familyOf(pid: number): number[] {
  const kids = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
    } catch {
      return false;
    }
  });
  return [pid, ...kids];
}
const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

describe('policy fuzz', () => {
  let env: ReturnType<typeof tempConfig>;
  let d: Smmapd;
  beforeAll(async () => {
    env = tempConfig('unixhierarchysep: no\nsmmapd_workers: 2');
    ctlBatch(env.conf, [
      'mailbox create user.fred',
      'mailbox create user.small',
      'quota set user.small --storage 10',
      'quota usage user.small --storage 8192',
      'mailbox create user.mallory',
      `deny add mallory --services smmapd --message "${DENY.replace(/[$`"\\]/g, '\\$&')}"`,
      'mailbox create shared.open',
      'acl set shared.open anyone lrsp',
    ]);
    d = await startSmmapd({ conf: env.conf, args: ['--policy'] });
  });
  afterAll(async () => {
    await d?.stop();
    rmSync(env.dir, { recursive: true, force: true });
  });

  it(`${INPUTS} mutated policy inputs: no violation, the log bounded, every descriptor back`, async () => {
    const deny = await policyQuery(d.port, [{ recipient: 'mallory@example.test', size: 1 }]);
    expect(deny.replies, 'the deny message as written').toEqual([`action=550 5.1.1 ${DENY}`]);
    // both workers open their store at their first request: warm them up before counting
    await Promise.all(Array.from({ length: 40 }, () => policyQuery(d.port, [{ recipient: 'fred@example.test', size: 1 }])));
    await sleep(1500);
    const family = familyOf(d.proc.pid!);
    expect(family.length, 'the primary and 2 workers').toBe(3);
    const fdsBefore = family.map(fds);
    const logBefore = d.output().length;
    const gen = new Gen(prng(SEED));
    const violations = new Map<string, number>();
    const examples: string[] = [];
    const violation = (cls: string, inp: FuzzInput, what: string): void => {
      violations.set(cls, (violations.get(cls) ?? 0) + 1);
      if (examples.length < 10) examples.push(`${cls}: ${what} [ops ${inp.ops.join(',')}; ${inp.ending}; chunk ${inp.chunk}] input ${JSON.stringify(inp.data.toString('latin1').slice(0, 300))}`);
    };
    let done = 0;
    let probeFailures = 0;
    const t0 = Date.now();
    const deadline = t0 + SECONDS * 1000;

    const one = async (inp: FuzzInput): Promise<void> => {
      const want = expected(inp.data, inp.ending === 'half');
      const judged = inp.ending === 'open' || inp.ending === 'half';
      const due = (got: Buffer, closed: boolean): boolean => {
        const r = parseReplies(got);
        if (r.bad !== null || r.replies.length > want.replies.length) return true;
        return r.replies.length === want.replies.length && (!want.closes || closed);
      };
      const out = await runInput(d.port, inp, due);
      const r = parseReplies(out.got);
      if (r.bad !== null) return violation('malformed', inp, r.bad);
      for (const [i, a] of r.replies.entries()) {
        if (/^OK\b/i.test(a)) violation('answer', inp, `an accept: ${a}`);
        const w = want.replies[i];
        if (w !== undefined && w !== null && a !== w) violation('answer', inp, `reply ${i}: ${JSON.stringify(a)}, want ${JSON.stringify(w)}`);
      }
      if (r.replies.length > want.replies.length) return violation('replies', inp, `${r.replies.length} replies, ${want.replies.length} due`);
      if (!judged) return;
      if (out.timedOut && r.replies.length < want.replies.length) return violation('hang', inp, `${r.replies.length} of ${want.replies.length} replies`);
      if (r.replies.length < want.replies.length) return violation('replies', inp, `${r.replies.length} replies, ${want.replies.length} due`);
      if (want.closes && !out.closed) return violation(out.timedOut ? 'hang' : 'no-close', inp, 'not closed');
      if (r.rest !== '') violation('malformed', inp, `a partial reply ${JSON.stringify(r.rest.slice(0, 80))}`);
    };

    const probe = async (): Promise<void> => {
      const t = Date.now();
      try {
        const p = await policyQuery(d.port, [{ recipient: 'nosuch@example.test', size: 1 }], DUE_MS);
        if (p.replies[0] !== 'action=550 5.1.1 Mailbox does not exist' || Date.now() - t > DUE_MS) probeFailures++;
      } catch {
        probeFailures++;
      }
    };

    const lane = async (): Promise<void> => {
      while (done < INPUTS && Date.now() < deadline) {
        const n = done++;
        await one(gen.input());
        if (n % PROBE_EVERY === 0) await probe();
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, lane));
    const seconds = (Date.now() - t0) / 1000;
    await sleep(2000); // past the linger of the last connections
    const fdsAfter = family.map(fds);
    const log = d.output().slice(logBefore);
    const logLines = log.split('\n').filter((l) => l !== '').length;
    const summary =
      `policy-fuzz: ${done} inputs (seed ${SEED}) in ${seconds.toFixed(0)} s, ` +
      `${[...violations.values()].reduce((a, b) => a + b, 0)} violations (${[...violations].map(([k, v]) => `${k}=${v}`).join(', ') || 'none'}), ` +
      `${probeFailures} probe failures, log ${logLines} lines ${Buffer.byteLength(log)} bytes, ` +
      `fds ${fdsBefore.join('/')} before, ${fdsAfter.join('/')} after (primary/workers)`;
    console.log(summary);
    for (const e of examples) console.log(`  ${e}`);
    expect(done, summary).toBe(INPUTS);
    expect(examples, summary).toEqual([]);
    expect(probeFailures, summary).toBe(0);
    // (+3: the store's three files, should a worker have missed the warm-up)
    for (const [i, n] of fdsAfter.entries()) expect(n, summary).toBeLessThanOrEqual(fdsBefore[i]! + 3);
    // protocol errors are rate-limited per client address: a few lines a minute, not one per input
    expect(logLines, summary).toBeLessThan(200);
    expect(d.proc.exitCode).toBeNull();
  }, (SECONDS + 60) * 1000);
});
