// A small socketmap client for tests: real sockets, byte-exact replies.
import net from 'node:net';

export function netstring(payload: string | Buffer): Buffer {
  const b = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from(`${b.length}:`), b, Buffer.from(',')]);
}

/** `host:port`, `[v6]:port` or `unix:/path`. */
export function dial(target: string): net.Socket {
  if (target.startsWith('unix:')) return net.connect(target.slice(5));
  const i = target.lastIndexOf(':');
  return net.connect({ host: target.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(target.slice(i + 1)) });
}

/** Split a byte stream into reply payloads; throws on a framing error. */
export function parseReplies(buf: Buffer): { replies: Buffer[]; rest: Buffer } {
  const replies: Buffer[] = [];
  let i = 0;
  for (;;) {
    const colon = buf.indexOf(0x3a, i);
    if (colon < 0) break;
    const lenText = buf.subarray(i, colon).toString('latin1');
    if (!/^\d+$/.test(lenText)) throw new Error(`bad reply length ${JSON.stringify(lenText)}`);
    const len = Number(lenText);
    if (buf.length < colon + 1 + len + 1) break;
    if (buf[colon + 1 + len] !== 0x2c) throw new Error('reply without terminator');
    replies.push(buf.subarray(colon + 1, colon + 1 + len));
    i = colon + 1 + len + 1;
  }
  return { replies, rest: buf.subarray(i) };
}

/** Ask each key in turn over one connection; reply payloads as text. */
export async function query(target: string, keys: readonly (string | Buffer)[], mapname = 'smmapd', timeoutMs = 10_000): Promise<string[]> {
  const sock = dial(target);
  sock.setTimeout(timeoutMs);
  const out: string[] = [];
  let buf: Buffer = Buffer.alloc(0);
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    for (const k of keys) {
      const key = typeof k === 'string' ? Buffer.from(k, 'utf8') : k;
      sock.write(netstring(Buffer.concat([Buffer.from(`${mapname} `), key])));
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const onData = (d: Buffer): void => {
          buf = Buffer.concat([buf, d]);
          const { replies, rest } = parseReplies(buf);
          if (replies.length > 0) {
            buf = rest;
            cleanup();
            resolve(replies[0]!);
          }
        };
        const onEnd = (): void => (cleanup(), reject(new Error('connection closed before reply')));
        const onTimeout = (): void => (cleanup(), reject(new Error('timeout waiting for reply')));
        const cleanup = (): void => {
          sock.off('data', onData);
          sock.off('end', onEnd);
          sock.off('close', onEnd);
          sock.off('timeout', onTimeout);
          sock.off('error', onEnd);
        };
        sock.on('data', onData);
        sock.once('end', onEnd);
        sock.once('close', onEnd);
        sock.once('error', onEnd);
        sock.once('timeout', onTimeout);
      });
      out.push(reply.toString('utf8'));
    }
  } finally {
    sock.destroy();
  }
  return out;
}

/** Send bytes (optionally in timed pieces); collect what comes back until close or quiet. */
export async function raw(
  target: string,
  pieces: Buffer | Buffer[],
  opts: { waitMs?: number; gapMs?: number } = {},
): Promise<{ data: Buffer; closed: boolean }> {
  const sock = dial(target);
  const chunks: Buffer[] = [];
  let closed = false;
  sock.on('data', (d: Buffer) => chunks.push(d));
  sock.on('error', () => undefined);
  const ended = new Promise<void>((resolve) => sock.once('close', () => ((closed = true), resolve())));
  await new Promise<void>((resolve, reject) => (sock.once('connect', resolve), sock.once('error', reject)));
  for (const p of Array.isArray(pieces) ? pieces : [pieces]) {
    sock.write(p);
    if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
  }
  await Promise.race([ended, new Promise((r) => setTimeout(r, opts.waitMs ?? 1500))]);
  sock.destroy();
  return { data: Buffer.concat(chunks), closed };
}

/** One request of a pipelining client: when it was sent and answered (ms since start), and the reply's first word. */
export interface Timed {
  readonly sent: number;
  readonly answered: number;
  readonly status: string;
  readonly key: string;
}

/**
 * `conns` clients, each keeping `depth` requests in flight (keys from `nextKey`) until
 * stop(): what a busy MX does to a map. Every answer is recorded with its times.
 */
export function pipelining(target: string, map: string, conns: number, depth: number, nextKey: () => string): {
  readonly t0: number;
  readonly records: Timed[];
  now(): number;
  stop(): Promise<void>;
} {
  const t0 = Date.now();
  const records: Timed[] = [];
  const socks: net.Socket[] = [];
  let stopped = false;
  const closed: Array<Promise<void>> = [];
  for (let c = 0; c < conns; c++) {
    const sock = dial(target);
    socks.push(sock);
    const sent: Array<{ at: number; key: string }> = [];
    let buf: Buffer = Buffer.alloc(0);
    const fill = (): void => {
      if (stopped) return;
      const out: Buffer[] = [];
      while (sent.length < depth) {
        const key = nextKey();
        sent.push({ at: Date.now() - t0, key });
        out.push(netstring(`${map} ${key}`));
      }
      if (out.length > 0) sock.write(Buffer.concat(out));
    };
    sock.on('connect', fill);
    sock.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      const { replies, rest } = parseReplies(buf);
      buf = rest;
      const at = Date.now() - t0;
      for (const r of replies) {
        const s = sent.shift()!;
        const sp = r.indexOf(0x20);
        records.push({ sent: s.at, answered: at, status: r.subarray(0, sp < 0 ? r.length : sp).toString('latin1'), key: s.key });
      }
      fill();
    });
    sock.on('error', () => undefined);
    closed.push(new Promise((r) => sock.once('close', () => r())));
  }
  return {
    t0,
    records,
    now: () => Date.now() - t0,
    stop: async () => {
      stopped = true;
      for (const s of socks) s.destroy();
      await Promise.all(closed);
    },
  };
}
