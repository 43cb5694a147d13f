// How a mysql table's query runs on a connection. mysql2 opens the connection (TLS, auth
// plugins, option-file settings: everything Postfix's libmariadb does at connect); from then
// on the socket is read and written here: a COM_QUERY packet out, the text result set parsed
// straight into rows of strings. mysql2's query path (a command object, column and row
// objects, callbacks per field) cost more CPU per lookup than the query itself, and it
// writes one query at a time: here queries may be written back to back (pipelining: MySQL
// answers COM_QUERY in order), so lookups waiting for a connection share one write.
import type { Connection } from 'mysql2';
import type { Duplex } from 'node:stream';
import { QueryError } from './hosts';
import { PipelinedWire } from './lanes';
import type { Rows } from './sql';

const COM_QUERY = 0x03;
/** The status flag saying another result (set) follows (a CALL, or several statements). */
const SERVER_MORE_RESULTS_EXISTS = 0x0008;
const MAX_PACKET = 0xffffff;

interface Pending {
  readonly resolve: (r: Rows) => void;
  readonly reject: (e: Error) => void;
  /** Result sets seen so far (rows of the first one kept). */
  sets: number;
  first: Array<Array<string | null>> | null;
  /** What the next packet is: the first of a result, a column definition, a row. */
  state: 'head' | 'columns' | 'rows';
  columns: number;
}

/** Lost: the server closed the connection (as mysql2 says it). */
function connectionLost(): Error {
  return Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true });
}

/** The query side of one connection mysql2 opened (its close and error listeners keep marking it dead). */
export class MyWire extends PipelinedWire<Pending> {
  constructor(
    readonly conn: Connection,
    private readonly requireResultSet: boolean,
  ) {
    super((conn as unknown as { stream: Duplex }).stream, connectionLost);
  }

  /** Close now (a hung query's, too: the server must not run it later). */
  close(): void {
    this.dead = true;
    this.conn.destroy();
  }

  /** Run one statement (the text as Postfix sends it); rows of text, NULL as null. */
  query(sql: string): Promise<Rows> {
    if (this.dead) return this.rejectLost();
    const body = Buffer.from(sql, 'utf8');
    // never the case for a lookup (Postfix's keys are short): refuse rather than split
    if (body.length + 1 >= MAX_PACKET) return Promise.reject(new QueryError('query too long'));
    const p = Buffer.allocUnsafe(5 + body.length);
    p.writeUIntLE(body.length + 1, 0, 3);
    p[3] = 0; // sequence id: a new command
    p[4] = COM_QUERY;
    body.copy(p, 5);
    return new Promise<Rows>((resolve, reject) => this.send({ resolve, reject, sets: 0, first: null, state: 'head', columns: 0 }, p));
  }

  protected parse(buf: Buffer): number {
    let off = 0;
    while (buf.length - off >= 4 && !this.dead) {
      const len = buf.readUIntLE(off, 3);
      if (len === MAX_PACKET) {
        // a packet of 16 MiB or more comes in pieces: join them (never for a lookup's rows, but correct)
        const joined = joinSplit(buf, off);
        if (joined === null) break;
        off = joined.end;
        this.packet(joined.payload);
      } else {
        if (buf.length - off < 4 + len) break;
        this.packet(buf.subarray(off + 4, off + 4 + len));
        off += 4 + len;
      }
    }
    return off;
  }

  /** One packet of the answer to the oldest query. */
  private packet(p: Buffer): void {
    const q = this.queue[0];
    if (q === undefined) {
      // nothing asked: the server says it is closing this connection (an ERR packet), or talks nonsense
      this.dead = true;
      this.conn.destroy();
      return;
    }
    const first = p[0];
    switch (q.state) {
      case 'head':
        if (first === 0xff) return this.done(q, new QueryError(errMessage(p)));
        if (first === 0x00) {
          // OK: a statement without a result set (or the status a CALL ends with)
          return this.endOfResult(q, okStatus(p));
        }
        if (first === 0xfb) {
          // LOCAL INFILE asked: never allowed here (nor by Postfix's tables)
          this.done(q, new Error('the server asked for a local file'));
          this.conn.destroy();
          return;
        }
        q.columns = lenenc(p, 0).value;
        q.sets++;
        if (q.sets === 1) q.first = [];
        q.state = 'columns';
        return;
      case 'columns':
        // column definitions, then an EOF packet (mysql2 does not ask for CLIENT_DEPRECATE_EOF)
        if (first === 0xfe && p.length < 9) q.state = 'rows';
        else if (first === 0xff) return this.done(q, new QueryError(errMessage(p)));
        return;
      case 'rows':
        if (first === 0xfe && p.length < 9) return this.endOfResult(q, p.length >= 5 ? p.readUInt16LE(3) : 0);
        if (first === 0xff) return this.done(q, new QueryError(errMessage(p)));
        if (q.sets === 1) q.first!.push(readRow(p, q.columns));
        return;
    }
  }

  private endOfResult(q: Pending, status: number): void {
    if (status & SERVER_MORE_RESULTS_EXISTS) {
      q.state = 'head';
      return;
    }
    if (q.sets > 1) return this.done(q, new QueryError('query returned more than one result set'));
    if (q.sets === 0) {
      if (this.requireResultSet) return this.done(q, new QueryError('query returned no result set (require_result_set = yes)'));
      q.first = [];
    }
    this.done(q, null);
  }

  private done(q: Pending, e: Error | null): void {
    // an error part-way through still leaves the answer's later packets to read: only the
    // last packet of the answer (ERR, or the final EOF/OK) gets here, so the query is over
    this.queue.shift();
    if (e !== null) q.reject(e);
    else q.resolve(q.first!);
  }
}

/** A length-encoded integer at `at`: its value and where the next field starts (0xfb, NULL, as -1). */
function lenenc(p: Buffer, at: number): { value: number; next: number } {
  const b = p[at]!;
  if (b < 0xfb) return { value: b, next: at + 1 };
  if (b === 0xfb) return { value: -1, next: at + 1 };
  if (b === 0xfc) return { value: p.readUInt16LE(at + 1), next: at + 3 };
  if (b === 0xfd) return { value: p.readUIntLE(at + 1, 3), next: at + 4 };
  return { value: Number(p.readBigUInt64LE(at + 1)), next: at + 9 };
}

/** A text-protocol row: every value as the UTF-8 text the server sent (mysql_fetch_row()), NULL as null. */
function readRow(p: Buffer, columns: number): Array<string | null> {
  const row: Array<string | null> = new Array(columns);
  let at = 0;
  for (let i = 0; i < columns; i++) {
    const b = p[at]!;
    if (b < 0xfb) {
      row[i] = p.toString('utf8', at + 1, at + 1 + b);
      at += 1 + b;
    } else if (b === 0xfb) {
      row[i] = null;
      at++;
    } else {
      const { value, next } = lenenc(p, at);
      row[i] = p.toString('utf8', next, next + value);
      at = next + value;
    }
  }
  return row;
}

/** The status flags of an OK packet (after affected rows and the insert id). */
function okStatus(p: Buffer): number {
  const a = lenenc(p, 1);
  const b = lenenc(p, a.next);
  return b.next + 2 <= p.length ? p.readUInt16LE(b.next) : 0;
}

/** An ERR packet's message (after the error number and the SQL state marker). */
function errMessage(p: Buffer): string {
  const at = p.length > 3 && p[3] === 0x23 ? 9 : 3;
  return p.toString('utf8', at);
}

/** A split packet starting at `off`: its pieces joined, or null when not all have come. */
function joinSplit(buf: Buffer, off: number): { payload: Buffer; end: number } | null {
  const parts: Buffer[] = [];
  let at = off;
  for (;;) {
    if (buf.length - at < 4) return null;
    const len = buf.readUIntLE(at, 3);
    if (buf.length - at < 4 + len) return null;
    parts.push(buf.subarray(at + 4, at + 4 + len));
    at += 4 + len;
    if (len < MAX_PACKET) return { payload: Buffer.concat(parts), end: at };
  }
}
