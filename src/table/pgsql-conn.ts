// How a pgsql table's query runs on a connection. `pg` opens the connection (TLS as libpq
// tries it, authentication, the server's settings); from then on the socket is read and
// written here: one simple-protocol Query message out (what PQexec sends), the answer
// parsed straight into rows of text. pg's per-query machinery (a Query object, a Result,
// events per message) cost more CPU per lookup than the server's work, and it sends one
// query at a time: simple Query messages may be pipelined (the server answers each, in
// order, up to its ReadyForQuery; an error ends only its own query), so lookups sharing a
// connection (lanes.ts) share writes.
import type { Client } from 'pg';
import type { Duplex } from 'node:stream';
import { QueryError } from './hosts';
import { PipelinedWire } from './lanes';
import type { Rows } from './sql';

interface Pending {
  readonly resolve: (r: Rows) => void;
  readonly reject: (e: Error) => void;
  /** The rows of the statement under way, and of the last one complete (PQexec keeps the last statement's result). */
  rows: Array<Array<string | null>>;
  last: Array<Array<string | null>>;
  error: Error | null;
}

function connectionLost(): Error {
  return Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
}

/** The query side of one connection pg opened (after asking its standard_conforming_strings and server_encoding; pg's listeners keep marking it ended). */
export class PgWire extends PipelinedWire<Pending> {
  constructor(
    readonly client: Client,
    /** standard_conforming_strings: kept up to date from the server's ParameterStatus messages. */
    public std: boolean,
    /** The database's server_encoding (UTF8, SQL_ASCII, LATIN1...). */
    readonly encoding: string,
  ) {
    super((client as unknown as { connection: { stream: Duplex } }).connection.stream, connectionLost);
  }

  close(abandoned: boolean): void {
    this.dead = true;
    // abandoned mid-query: close the socket now (end() would wait for the hung server)
    if (abandoned) this.sock.destroy();
    else void this.client.end().catch(() => undefined);
  }

  /** Run `sql` as PQexec would: the last statement's rows, as text, NULL as null. */
  query(sql: string): Promise<Rows> {
    if (this.dead) return this.rejectLost();
    if (sql.includes('\0')) return Promise.reject(new QueryError('query contains a NUL byte'));
    const len = Buffer.byteLength(sql, 'utf8');
    const m = Buffer.allocUnsafe(6 + len);
    m[0] = 0x51; // 'Q'
    m.writeInt32BE(5 + len, 1);
    m.write(sql, 5, 'utf8');
    m[5 + len] = 0;
    return new Promise<Rows>((resolve, reject) => this.send({ resolve, reject, rows: [], last: [], error: null }, m));
  }

  protected parse(buf: Buffer): number {
    let off = 0;
    while (buf.length - off >= 5 && !this.dead) {
      const len = buf.readInt32BE(off + 1);
      if (buf.length - off < 1 + len) break;
      this.message(buf[off]!, buf.subarray(off + 5, off + 1 + len));
      off += 1 + len;
    }
    return off;
  }

  private message(type: number, body: Buffer): void {
    switch (type) {
      case 0x53: // 'S' ParameterStatus: the quoting follows standard_conforming_strings
        this.parameter(body);
        return;
      case 0x4e: // 'N' NoticeResponse
      case 0x41: // 'A' NotificationResponse
        return;
    }
    const q = this.queue[0];
    if (q === undefined) {
      // nothing asked: the server is closing the connection (a FATAL ErrorResponse), or talks nonsense
      this.close(true);
      return;
    }
    switch (type) {
      case 0x54: // 'T' RowDescription
        return;
      case 0x44: // 'D' DataRow
        q.rows.push(readRow(body));
        return;
      case 0x43: // 'C' CommandComplete: a statement's result (rows or none)
      case 0x49: // 'I' EmptyQueryResponse
        q.last = q.rows;
        q.rows = [];
        return;
      case 0x45: {
        // 'E' ErrorResponse: an ERROR ends this query only (the connection lives on); FATAL and PANIC end the session
        const f = errorFields(body);
        const severity = f.get(0x56) ?? f.get(0x53) ?? 'ERROR';
        const message = f.get(0x4d) ?? 'error';
        if (severity === 'ERROR') q.error ??= new QueryError(message);
        else {
          this.fail(Object.assign(new Error(message), { severity }));
          this.sock.destroy();
        }
        return;
      }
      case 0x5a: // 'Z' ReadyForQuery: this query's answer is complete
        this.queue.shift();
        if (q.error !== null) q.reject(q.error);
        else q.resolve(q.last);
        return;
      default:
        // COPY and the like: not a lookup; the connection cannot be kept in step
        this.fail(new Error(`unexpected message '${String.fromCharCode(type)}' from the server`));
        this.sock.destroy();
    }
  }

  private parameter(body: Buffer): void {
    const z = body.indexOf(0);
    if (z < 0 || body.toString('utf8', 0, z) !== 'standard_conforming_strings') return;
    this.std = body.toString('utf8', z + 1, body.indexOf(0, z + 1)) !== 'off';
  }
}

/** A DataRow: every value as the text the server sent (PQgetvalue), NULL as null. */
function readRow(b: Buffer): Array<string | null> {
  const n = b.readInt16BE(0);
  const row: Array<string | null> = new Array(n);
  let at = 2;
  for (let i = 0; i < n; i++) {
    const len = b.readInt32BE(at);
    at += 4;
    if (len < 0) row[i] = null;
    else {
      row[i] = b.toString('utf8', at, at + len);
      at += len;
    }
  }
  return row;
}

/** An ErrorResponse's fields by their code byte (S severity, V severity unlocalized, M message). */
function errorFields(b: Buffer): Map<number, string> {
  const f = new Map<number, string>();
  let at = 0;
  while (at < b.length && b[at] !== 0) {
    const code = b[at]!;
    const end = b.indexOf(0, at + 1);
    if (end < 0) break;
    f.set(code, b.toString('utf8', at + 1, end));
    at = end + 1;
  }
  return f;
}
