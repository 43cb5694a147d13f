// Who is on the other end of a connection, kept as parts: the rate limiter keys on the
// address alone, and the log and audit lines print it (formatPeer) the way Cyrus's auditlog
// names a client, `address:port`, or `[local]` for a unix socket.

export interface Peer {
  /** An IP address, `[local]` (unix socket), `[unknown]` (reset before accept), or what inetd says. */
  readonly address: string;
  /** Absent where there is none (unix socket, inetd's REMOTE_HOST). */
  readonly port?: number;
}

export const LOCAL_PEER: Peer = { address: '[local]' };

/**
 * The client of a socket, asked once, at accept: a TCP client that reset before we accepted
 * has no address left (getpeername fails), but its socket still has a local one: `[unknown]`,
 * never `[local]`.
 */
export function peerOf(sock: { remoteAddress?: string | undefined; remotePort?: number | undefined; localAddress?: string | undefined }): Peer {
  if (sock.remoteAddress !== undefined) return sock.remotePort === undefined ? { address: sock.remoteAddress } : { address: sock.remoteAddress, port: sock.remotePort };
  return sock.localAddress !== undefined ? { address: '[unknown]' } : LOCAL_PEER;
}

/** The peer as log and audit lines print it. */
export function formatPeer(p: Peer): string {
  return p.port === undefined ? p.address : `${p.address}:${p.port}`;
}
