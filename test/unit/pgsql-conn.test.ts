// The pgsql query path (src/table/pgsql-conn.ts) against the simple Query protocol as a
// server sends it, split anywhere: rows and NULLs, several statements (PQexec keeps the
// last), an ERROR that ends one query only, pipelined queries answered in order,
// standard_conforming_strings followed. The tables against a real PostgreSQL:
// test/integration/directory-maps.test.ts, table-parameters.test.ts.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { QueryError } from '../../src/table/hosts';
import { PgWire } from '../../src/table/pgsql-conn';

type Client = ConstructorParameters<typeof PgWire>[0];

function fakeClient(): { client: Client; written: Buffer[]; sock: EventEmitter & { destroyed: boolean } } {
  const sock = Object.assign(new EventEmitter(), { destroyed: false, write: (b: Buffer) => (written.push(Buffer.from(b)), true), destroy: () => ((sock.destroyed = true), sock.emit('close')) });
  const written: Buffer[] = [];
  const client = { connection: { stream: sock }, end: async () => undefined };
  return { client: client as unknown as Client, written, sock };
}

function msg(type: string, body: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type.charCodeAt(0);
  h.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([h, body]);
}

const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');
const rowDesc = msg('T', Buffer.from([0, 0]));
function dataRow(vals: Array<string | null>): Buffer {
  const parts: Buffer[] = [Buffer.from([0, vals.length])];
  for (const v of vals) {
    const len = Buffer.alloc(4);
    if (v === null) len.writeInt32BE(-1);
    else len.writeInt32BE(Buffer.byteLength(v));
    parts.push(len);
    if (v !== null) parts.push(Buffer.from(v, 'utf8'));
  }
  return msg('D', Buffer.concat(parts));
}
const complete = (tag: string): Buffer => msg('C', cstr(tag));
const ready = msg('Z', Buffer.from('I'));
const error = (severity: string, text: string): Buffer => msg('E', Buffer.concat([cstr(`S${severity}`), cstr(`V${severity}`), cstr('C42703'), cstr(`M${text}`), Buffer.from([0])]));

describe('pgsql query path (PgWire)', () => {
  it('sends a simple Query and reads rows split anywhere, NULLs as null', async () => {
    const f = fakeClient();
    const w = new PgWire(f.client, true, 'UTF8');
    const p = w.query("SELECT goto FROM aliases WHERE alias='jürgen'");
    expect(f.written).toHaveLength(1);
    const q = f.written[0]!;
    expect(String.fromCharCode(q[0]!)).toBe('Q');
    expect(q.readInt32BE(1)).toBe(q.length - 1);
    expect(q.subarray(5).toString('utf8')).toBe("SELECT goto FROM aliases WHERE alias='jürgen'\0");
    const bytes = Buffer.concat([rowDesc, dataRow(['jürgen@example.com', null]), dataRow(['', 'x']), complete('SELECT 2'), ready]);
    for (let i = 0; i < bytes.length; i++) f.sock.emit('data', bytes.subarray(i, i + 1));
    await expect(p).resolves.toEqual([['jürgen@example.com', null], ['', 'x']]);
  });

  it('several statements: the last one\'s rows (PQexec); none when it returns none', async () => {
    const f = fakeClient();
    const w = new PgWire(f.client, true, 'UTF8');
    const a = w.query('SELECT 1; SELECT 2');
    f.sock.emit('data', Buffer.concat([rowDesc, dataRow(['1']), complete('SELECT 1'), rowDesc, dataRow(['2']), complete('SELECT 1'), ready]));
    await expect(a).resolves.toEqual([['2']]);
    const b = w.query('SELECT 1; SET x = 1');
    f.sock.emit('data', Buffer.concat([rowDesc, dataRow(['1']), complete('SELECT 1'), complete('SET'), ready]));
    await expect(b).resolves.toEqual([]);
  });

  it('pipelines in order; an ERROR fails its own query only, the connection lives on', async () => {
    const f = fakeClient();
    const w = new PgWire(f.client, true, 'UTF8');
    const a = w.query('SELECT 1');
    const b = w.query('SELECT nosuch');
    const c = w.query('SELECT 3');
    await new Promise((r) => setImmediate(r));
    expect(f.written).toHaveLength(2);
    expect(w.inFlight).toBe(3);
    f.sock.emit('data', Buffer.concat([rowDesc, dataRow(['1']), complete('SELECT 1'), ready, error('ERROR', 'column "nosuch" does not exist'), ready, rowDesc, complete('SELECT 0'), ready]));
    await expect(a).resolves.toEqual([['1']]);
    await expect(b).rejects.toBeInstanceOf(QueryError);
    await expect(b).rejects.toThrow('column "nosuch" does not exist');
    await expect(c).resolves.toEqual([]);
    expect(w.dead).toBe(false);
  });

  it('FATAL (the server shuts the session) and a lost connection fail every waiting query, not as a query error', async () => {
    const f = fakeClient();
    const w = new PgWire(f.client, true, 'UTF8');
    const a = w.query('SELECT 1');
    const b = w.query('SELECT 2');
    f.sock.emit('data', error('FATAL', 'terminating connection due to administrator command'));
    await expect(a).rejects.toThrow('terminating connection');
    await expect(a).rejects.not.toBeInstanceOf(QueryError);
    await expect(b).rejects.toThrow();
    expect(w.dead).toBe(true);
    const g = fakeClient();
    const v = new PgWire(g.client, true, 'UTF8');
    const c = v.query('SELECT 1');
    g.sock.emit('close');
    await expect(c).rejects.not.toBeInstanceOf(QueryError);
  });

  it('follows standard_conforming_strings as the server reports it', () => {
    const f = fakeClient();
    const w = new PgWire(f.client, true, 'UTF8');
    f.sock.emit('data', msg('S', Buffer.concat([cstr('standard_conforming_strings'), cstr('off')])));
    expect(w.std).toBe(false);
    f.sock.emit('data', msg('S', Buffer.concat([cstr('standard_conforming_strings'), cstr('on')])));
    expect(w.std).toBe(true);
  });
});
