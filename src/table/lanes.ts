// Pool slots on shared connections, for the SQL tables whose protocol answers queries in
// order (MySQL's COM_QUERY, PostgreSQL's simple Query): up to LANES_PER_CONNECTION slots of
// a host's ConnPool share one connection and pipeline their queries on it, so that a pool
// of 8 keeps 2 sockets busy rather than 8 half-idle ones (fewer writes, reads and server
// wake-ups per lookup). The pool still bounds the lookups under way and their deadlines.

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

/** Pool slots per connection (smmapd_maps_pool_size 8: two connections per host and process). */
export const LANES_PER_CONNECTION = 4;

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

/**
 * The write side of a pipelined connection: a query to an idle server goes at once; the
 * queries that come while it is busy go together in one write after this turn of the event
 * loop has read all it can (one syscall, one wake-up of the server).
 */
export class Batcher {
  private out: Buffer[] = [];
  private flushing = false;

  constructor(
    private readonly sock: { write(b: Buffer): unknown },
    private readonly dead: () => boolean,
  ) {}

  send(packet: Buffer, idle: boolean): void {
    if (idle && !this.flushing) return void this.sock.write(packet);
    this.out.push(packet);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  /** The connection failed: what was not written never will be. */
  drop(): void {
    this.out = [];
  }

  private flush(): void {
    this.flushing = false;
    if (this.dead() || this.out.length === 0) return;
    const data = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
    this.sock.write(data);
  }
}
