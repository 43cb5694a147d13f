// The mysql query path (src/table/mysql-conn.ts) against the MySQL text protocol as a
// server sends it, byte by byte where a packet may be split: result sets, NULLs, long
// values, errors, CALL's extra results, pipelined queries answered in order. The tables
// against a real MariaDB: test/integration/directory-maps.test.ts, table-parameters.test.ts.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { QueryError } from '../../src/table/hosts';
import { Lanes, LANES_PER_CONNECTION } from '../../src/table/lanes';
import { MyWire } from '../../src/table/mysql-conn';

/** A connection as mysql2 leaves it after the handshake: a socket we read and write. */
function fakeConn(): { conn: ConstructorParameters<typeof MyWire>[0]; written: Buffer[]; sock: EventEmitter; destroyed: () => boolean } {
  const sock = new EventEmitter() as EventEmitter & { write: (b: Buffer) => boolean };
  const written: Buffer[] = [];
  sock.write = (b: Buffer) => (written.push(Buffer.from(b)), true);
  let destroyed = false;
  const conn = { stream: sock, destroy: () => ((destroyed = true), sock.emit('close')) };
  return { conn: conn as unknown as ConstructorParameters<typeof MyWire>[0], written, sock, destroyed: () => destroyed };
}

function packet(seq: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUIntLE(payload.length, 0, 3);
  h[3] = seq;
  return Buffer.concat([h, payload]);
}

function lenencStr(s: string | null): Buffer {
  if (s === null) return Buffer.from([0xfb]);
  const b = Buffer.from(s, 'utf8');
  if (b.length < 251) return Buffer.concat([Buffer.from([b.length]), b]);
  const h = Buffer.alloc(3);
  h[0] = 0xfc;
  h.writeUInt16LE(b.length, 1);
  return Buffer.concat([h, b]);
}

const eof = (status = 0x0002): Buffer => Buffer.from([0xfe, 0, 0, status & 0xff, status >> 8]);
const ok = (status = 0x0002): Buffer => Buffer.from([0x00, 0, 0, status & 0xff, status >> 8, 0, 0]);
const err = (msg: string): Buffer => Buffer.concat([Buffer.from([0xff, 0x28, 0x04]), Buffer.from(`#42S22${msg}`)]);

/** A whole text result set: column count, definitions (their contents unread), EOF, rows, EOF. */
function resultSet(rows: Array<Array<string | null>>, columns: number, last = 0x0002): Buffer[] {
  const out: Buffer[] = [Buffer.from([columns])];
  for (let i = 0; i < columns; i++) out.push(Buffer.from('\x03def\x00\x00\x00\x01c\x00\x0c\x21\x00'));
  out.push(eof());
  for (const r of rows) out.push(Buffer.concat(r.map(lenencStr)));
  out.push(eof(last));
  return out;
}

const wire = (payloads: Buffer[]): Buffer => Buffer.concat(payloads.map((p, i) => packet(i + 1, p)));

describe('mysql query path (MyWire)', () => {
  it('writes COM_QUERY and reads a result set split anywhere: NULLs, long and UTF-8 values', async () => {
    const f = fakeConn();
    const w = new MyWire(f.conn, true);
    const p = w.query("SELECT a, b FROM t WHERE k = 'jürgen'");
    expect(f.written).toHaveLength(1);
    const sent = f.written[0]!;
    expect(sent.readUIntLE(0, 3)).toBe(sent.length - 4);
    expect(sent[3]).toBe(0);
    expect(sent[4]).toBe(0x03);
    expect(sent.subarray(5).toString('utf8')).toBe("SELECT a, b FROM t WHERE k = 'jürgen'");
    const long = 'x'.repeat(300);
    const bytes = wire(resultSet([['jürgen@example.com', null], [long, '']], 2));
    for (let i = 0; i < bytes.length; i++) f.sock.emit('data', bytes.subarray(i, i + 1));
    await expect(p).resolves.toEqual([['jürgen@example.com', null], [long, '']]);
  });

  it('pipelines: queries asked while one is under way go out in one write, answers in order', async () => {
    const f = fakeConn();
    const w = new MyWire(f.conn, true);
    const a = w.query('SELECT 1');
    const b = w.query('SELECT 2');
    const c = w.query('SELECT 3');
    expect(f.written).toHaveLength(1);
    await new Promise((r) => setImmediate(r));
    expect(f.written).toHaveLength(2);
    expect(f.written[1]!.toString('latin1')).toContain('SELECT 2');
    expect(f.written[1]!.toString('latin1')).toContain('SELECT 3');
    expect(w.inFlight).toBe(3);
    f.sock.emit('data', Buffer.concat([wire(resultSet([['one']], 1)), wire([err('Unknown column')]), wire(resultSet([], 1))]));
    await expect(a).resolves.toEqual([['one']]);
    await expect(b).rejects.toThrow(QueryError);
    await expect(b).rejects.toThrow('Unknown column');
    await expect(c).resolves.toEqual([]);
    expect(w.dead).toBe(false);
  });

  it('no result set: an error with require_result_set (the default), no rows without', async () => {
    const f = fakeConn();
    const strict = new MyWire(f.conn, true);
    const p = strict.query('DO 1');
    f.sock.emit('data', wire([ok()]));
    await expect(p).rejects.toThrow('query returned no result set (require_result_set = yes)');
    const g = fakeConn();
    const lax = new MyWire(g.conn, false);
    const q = lax.query('DO 1');
    g.sock.emit('data', wire([ok()]));
    await expect(q).resolves.toEqual([]);
  });

  it('CALL: one result set and the closing OK answer; two result sets are an error', async () => {
    const f = fakeConn();
    const w = new MyWire(f.conn, true);
    const one = w.query('CALL one()');
    f.sock.emit('data', wire([...resultSet([['a']], 1, 0x000a), ok()]));
    await expect(one).resolves.toEqual([['a']]);
    const two = w.query('CALL two()');
    f.sock.emit('data', wire([...resultSet([['a']], 1, 0x000a), ...resultSet([['b']], 1, 0x000a), ok()]));
    await expect(two).rejects.toThrow('query returned more than one result set');
    // the connection is still in step: the next answer is the next query's
    const next = w.query('SELECT 1');
    f.sock.emit('data', wire(resultSet([['1']], 1)));
    await expect(next).resolves.toEqual([['1']]);
  });

  it('a closed connection fails every query waiting on it (not a query error: the host)', async () => {
    const f = fakeConn();
    const w = new MyWire(f.conn, true);
    const a = w.query('SELECT 1');
    const b = w.query('SELECT 2');
    f.sock.emit('close');
    await expect(a).rejects.toThrow('Connection lost');
    await expect(b).rejects.not.toBeInstanceOf(QueryError);
    expect(w.dead).toBe(true);
    await expect(w.query('SELECT 3')).rejects.toThrow('Connection lost');
  });

  it('lanes: up to LANES_PER_CONNECTION pool slots share a connection; an abandoned slot closes it', async () => {
    const opened: Array<ReturnType<typeof fakeConn>> = [];
    const lanes = new Lanes(async () => {
      const f = fakeConn();
      opened.push(f);
      return new MyWire(f.conn, true);
    });
    const ls = [];
    const n = LANES_PER_CONNECTION;
    for (let i = 0; i <= n; i++) ls.push(await lanes.lane());
    expect(opened).toHaveLength(2);
    expect(ls[n - 1]!.wire).toBe(ls[0]!.wire);
    expect(ls[n]!.wire).not.toBe(ls[0]!.wire);
    lanes.release(ls[n]!, false);
    expect(opened[1]!.destroyed()).toBe(true);
    lanes.release(ls[0]!, true);
    expect(opened[0]!.destroyed()).toBe(true);
    expect(ls[1]!.wire.dead).toBe(true);
    const fresh = await lanes.lane();
    expect(opened).toHaveLength(3);
    expect(fresh.wire.dead).toBe(false);
  });
});
