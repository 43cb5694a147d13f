// Stop and resume accepting on a listening net.Server WITHOUT closing its descriptor.
//
// Why: under Cyrus master(8) every child shares one listening socket (fd 4) and must not
// accept while it is busy, so that the next client goes to an idle child (or waits in the
// listen queue until the master forks one). Node has no API for this: server.close()
// closes fd 4 for good, and server.maxConnections accepts the extra client and then drops it.
//
// How (Node internals, checked on Node 20 / libuv 1.4x): the server's libuv handle is a
// stream whose poll watcher calls accept(). `handle.readStop()` stops that watcher, and
// `handle.readStart()` starts it again (its callback stays the accept callback, the read
// callback it installs is never called on a listening socket). readStop() is a no-op until
// readStart() has set the "reading" flag, so pause() calls readStart() first; readStart()
// answers UV_EALREADY when already reading, which is fine. libuv accepts one connection per
// poll event once the watcher is stopped inside the connection callback, so a client that
// is already in the listen queue stays there for a sibling process.
//
// This only works for handles opened on an inherited descriptor (listen({ fd })): a socket
// that Node bound itself is not marked readable and readStart() fails with UV_ENOTCONN.
// The gate reports that (and any missing internals) by returning false; callers then keep
// accepting and serve concurrent clients instead, which is still correct, only less fair.
import type net from 'node:net';
import { constants } from 'node:os';

interface ListenHandle {
  readStart(): number;
  readStop(): number;
}

const EALREADY = -(constants.errno.EALREADY ?? 114);

function handleOf(server: net.Server): ListenHandle | null {
  const h = (server as unknown as { _handle?: unknown })._handle;
  if (typeof h !== 'object' || h === null) return null;
  const c = h as Partial<ListenHandle>;
  return typeof c.readStart === 'function' && typeof c.readStop === 'function' ? (h as ListenHandle) : null;
}

export class AcceptGate {
  constructor(private readonly server: net.Server) {}

  /** Stop accepting; connections wait in the kernel's listen queue. False if not possible. */
  pause(): boolean {
    const h = handleOf(this.server);
    if (h === null) return false;
    const r = h.readStart();
    if (r !== 0 && r !== EALREADY) return false;
    if (h.readStop() !== 0) return false;
    return true;
  }

  /** Accept again. False if not possible (the server was closed, or internals changed). */
  resume(): boolean {
    const h = handleOf(this.server);
    if (h === null) return false;
    const r = h.readStart();
    if (r !== 0 && r !== EALREADY) return false;
    return true;
  }
}
