// Pool slots on shared connections, for the SQL tables whose protocol answers queries in
// order (MySQL's COM_QUERY, PostgreSQL's simple Query): up to LANES_PER_CONNECTION slots of
// a host's ConnPool share one connection and pipeline their queries on it, so that a pool
// of 8 keeps one socket and one server thread busy rather than 8 half-idle ones (fewer
// writes, reads and server wake-ups per lookup: waking a sleeping peer is the dearest part
// of a lookup on a VM). The pool still bounds the lookups under way and their deadlines.
import type { Duplex } from 'node:stream';
import { keepPolling } from '../busy-poll';
import { ConnPool } from '../pool';

/** A connection that runs pipelined queries (mysql-conn.ts, pgsql-conn.ts). */
export interface Wire {
  readonly dead: boolean;
  /** Slots on it. */
  lanes: number;
  /** Close it; `abandoned`: a query on it is hung, close at once (the server must not run it later). */
  close(abandoned: boolean): void;
}

/** A pool slot: one lookup at a time, on a connection it may share with other slots. */
export interface Lane<W extends Wire> {
  readonly wire: W;
}

/**
 * Pool slots per connection (smmapd_maps_pool_size 16: two connections per host and
 * process). 8 rather than 4: one worker at eight connections, MariaDB on the same two CPUs,
 * 50 against 57 µs of daemon CPU per uncached lookup and +5 to +12% lookups/s (README).
 */
export const LANES_PER_CONNECTION = 8;

/**
 * The connections of one host behind its pool's slots. A query abandoned at its deadline
 * closes its connection, and so fails the queries of the other slots on it (they were
 * waiting behind it on the same server anyway).
 */
export class Lanes<W extends Wire> {
  private readonly wires: W[] = [];

  constructor(
    private readonly open: () => Promise<W>,
    private readonly perWire = LANES_PER_CONNECTION,
  ) {}

  /** A slot on a live connection with room, else on a new one (ConnPool's connect). */
  async lane(): Promise<Lane<W>> {
    for (let i = this.wires.length - 1; i >= 0; i--) if (this.wires[i]!.dead) this.wires.splice(i, 1);
    let wire = this.wires.find((w) => w.lanes < this.perWire);
    if (wire === undefined) {
      wire = await this.open();
      this.wires.push(wire);
    }
    wire.lanes++;
    return { wire };
  }

  /** The slot is closed (ConnPool's destroy); the connection goes with its last slot, or with a hung query. */
  release(l: Lane<W>, abandoned: boolean): void {
    l.wire.lanes--;
    if (abandoned || l.wire.lanes <= 0) {
      const i = this.wires.indexOf(l.wire);
      if (i >= 0) this.wires.splice(i, 1);
      l.wire.close(abandoned);
    }
  }
}

/** A host's pool of `size` slots on the connections `open` makes (the pgsql and mysql drivers). */
export function lanePool<W extends Wire>(size: number, open: () => Promise<W>): ConnPool<Lane<W>> {
  const lanes = new Lanes(open);
  return new ConnPool<Lane<W>>(
    size,
    () => lanes.lane(),
    (l, abandoned) => lanes.release(l, abandoned),
    (l) => !l.wire.dead,
  );
}

/** A query written and not yet answered: failed with the connection. */
export interface PendingQuery {
  readonly reject: (e: Error) => void;
}

/**
 * The query side of one connection a driver opened (mysql-conn.ts, pgsql-conn.ts): the
 * socket's data is read here (the driver keeps its close and error listeners), queries are
 * answered in order, and a socket error or close fails every query still waiting (not a
 * QueryError: the host). A query to an idle server is written at once; the queries that come
 * while it is busy go together in one write after this turn of the event loop has read all
 * it can (one syscall, one wake-up of the server).
 */
export abstract class PipelinedWire<P extends PendingQuery> implements Wire {
  dead = false;
  lanes = 0;
  /** Queries written and not yet answered, oldest first. */
  protected readonly queue: P[] = [];
  /** Bytes received and not yet parsed (a message may span reads). */
  private buf: Buffer = Buffer.alloc(0);
  private out: Buffer[] = [];
  private flushing = false;

  constructor(
    protected readonly sock: Duplex,
    private readonly lost: () => Error,
  ) {
    sock.removeAllListeners('data');
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('close', () => this.fail(lost()));
    sock.on('error', (e: Error) => this.fail(e));
  }

  abstract close(abandoned: boolean): void;

  /** Queries written and not yet answered. */
  get inFlight(): number {
    return this.queue.length;
  }

  /** Queue `q` and write its message. */
  protected send(q: P, message: Buffer): void {
    keepPolling(); // its answer may come within the window
    const idle = this.queue.length === 0;
    this.queue.push(q);
    if (idle && !this.flushing) {
      this.sock.write(message);
      return;
    }
    this.out.push(message);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  /** A query on a connection that is gone. */
  protected rejectLost<T>(): Promise<T> {
    return Promise.reject(this.lost());
  }

  /** Parse the whole messages at the start of `buf` (stopping if the connection dies); how many bytes they took. */
  protected abstract parse(buf: Buffer): number;

  protected fail(e: Error): void {
    this.dead = true;
    for (const q of this.queue.splice(0)) q.reject(e);
    this.out = [];
  }

  private flush(): void {
    this.flushing = false;
    if (this.dead || this.out.length === 0) return;
    const data = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
    this.sock.write(data);
  }

  private onData(d: Buffer): void {
    keepPolling();
    const buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    const off = this.parse(buf);
    if (this.dead) return;
    this.buf = off === buf.length ? Buffer.alloc(0) : buf.subarray(off);
    // a large chunk's tail must not pin the whole chunk
    if (this.buf.length > 0 && buf.length > 65536) this.buf = Buffer.from(this.buf);
  }
}
