// A service of Cyrus master(8), following master/service.c. The master hands us the
// listening socket as fd 4 and a status pipe as fd 3 (CYRUS_SERVICE, CYRUS_ID set). We
// accept on fd 4 ourselves, one connection at a time, and tell the master each change of
// state with 8 bytes on fd 3 (native-endian int32 message, int32 pid):
//   UNAVAILABLE on accepting, CONNECTION before serving, AVAILABLE when ready for the next,
//   UNAVAILABLE before exiting while counted as ready.
// The master counts a new child as ready without a message, forks another when one says
// UNAVAILABLE (up to maxchild), and disables a service whose ready children exit abnormally
// five times in ten seconds: every exit path tells it first (MasterStatus.leave(), an exit hook of the process shell).
// -U: connections before exit. -T: idle seconds before exit once one was served, chosen
// between T and 2T like Cyrus does, so a pool started together does not exit together.
// SIGTERM/SIGINT/SIGQUIT (shutdown): exit when idle, or once the connection in progress has
// had its answers (it is drained: what has fully arrived is answered, then it closes), so a
// slow client never holds up the master's shutdown. SIGHUP (the master reloads): exit when
// idle, or when the connection in progress ends.
import { writeSync } from 'node:fs';
import net from 'node:net';
import { endianness } from 'node:os';
import { AcceptGate } from './accept-gate';
import { EX_OK, EX_OSERR } from './exit-codes';
import { Lifecycle, type LifecycleLimits } from './lifecycle';
import { formatPeer, peerOf } from './peer';
import type { Service } from './service';
import type { ProcessShell, Signal } from './shell';

const STATUS_FD = 3;
const LISTEN_FD = 4;
/** Bytes of one status message: int32 message, int32 pid. */
const STATUS_MESSAGE_BYTES = 8;
/** How often an idle child looks whether the master is still its parent. */
const PARENT_CHECK_MS = 2000;

export const MASTER_SERVICE_AVAILABLE = 1;
export const MASTER_SERVICE_UNAVAILABLE = 2;
export const MASTER_SERVICE_CONNECTION = 3;

/** Our side of the status pipe, and what the master believes of us: 'ready' from birth until we say UNAVAILABLE. */
export class MasterStatus {
  private state: 'ready' | 'busy' = 'ready';
  private masterGone = false;

  get ready(): boolean {
    return this.state === 'ready';
  }

  notify(msg: number): void {
    if (this.masterGone) return;
    const b = Buffer.alloc(STATUS_MESSAGE_BYTES);
    if (endianness() === 'LE') {
      b.writeInt32LE(msg, 0);
      b.writeInt32LE(process.pid, 4);
    } else {
      b.writeInt32BE(msg, 0);
      b.writeInt32BE(process.pid, 4);
    }
    try {
      // One synchronous write of 8 bytes to a pipe is atomic: messages of siblings never mix.
      writeSync(STATUS_FD, b);
    } catch {
      this.masterGone = true; // EPIPE/EBADF: nobody to tell (SIGPIPE is ignored by Node)
    }
    if (msg === MASTER_SERVICE_AVAILABLE) this.state = 'ready';
    else if (msg === MASTER_SERVICE_UNAVAILABLE) this.state = 'busy';
  }

  /** Before any exit: a ready child that vanishes silently counts as an abnormal exit. */
  leave(): void {
    if (this.state === 'ready') this.notify(MASTER_SERVICE_UNAVAILABLE);
  }
}

/** -T as Cyrus applies it: between T and 2T seconds (0 = never). */
export function randomisedTimeout(t: number): number {
  return t > 0 ? t + Math.floor(Math.random() * t) : 0;
}

function listenOnFd(server: net.Server, fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function runCyrusMaster(makeService: () => Service, limits: LifecycleLimits, shell: ProcessShell, status: MasterStatus): Promise<void> {
  const service = makeService();
  shell.useService(service);
  const log = service.log;
  const name = process.env.CYRUS_SERVICE ?? 'smmapd';
  const server = net.createServer({ allowHalfOpen: true, noDelay: true });
  const child = new MasterChild(service, shell, status, new AcceptGate(server), limits);
  server.on('connection', (sock: net.Socket) => child.accepted(sock));
  server.on('error', (e) => {
    log.error(`accept on fd ${LISTEN_FD} failed: ${e.message}`);
    child.exit('accept failed', EX_OSERR);
  });
  try {
    await listenOnFd(server, LISTEN_FD);
  } catch (e) {
    log.error(`cannot listen on fd ${LISTEN_FD} (is this a Cyrus master(8) service?): ${(e as Error).message}`);
    child.exit('no listening socket', EX_OSERR);
    return;
  }
  shell.control({ stop: (sig) => child.signalled(sig), quit: true, reload: () => child.signalled('SIGHUP') });
  child.watchParent();
  log.debug(`${name}: serving on fd ${LISTEN_FD} (-U ${limits.uses}, -T ${limits.timeoutSec})`);
}

/** One child of the master: takes a client at a time, tells the master, leaves when told or done. */
class MasterChild {
  private readonly life: Lifecycle;
  /** The signal that ends us once the connection in progress is over. */
  private signal: Signal | null = null;

  constructor(
    private readonly service: Service,
    private readonly shell: ProcessShell,
    private readonly status: MasterStatus,
    private readonly gate: AcceptGate,
    limits: LifecycleLimits,
  ) {
    // However we exit: take no further client from the shared queue (the shell tells the master).
    shell.onExit(() => void gate.pause());
    this.life = new Lifecycle({ uses: limits.uses, timeoutSec: randomisedTimeout(limits.timeoutSec) }, () => gate.pause(), (why) => this.exit(why));
  }

  exit(why: string, code = EX_OK): void {
    this.shell.exit(code, { why });
  }

  accepted(sock: net.Socket): void {
    if (!this.shell.running) {
      // Only when libuv accepted in the same poll event as our exit: hand it back cleanly.
      sock.destroy();
      return;
    }
    // Busy: leave further clients in the listen queue for an idle sibling (or a fresh child).
    if (!this.gate.pause() && this.life.connections === 0) this.service.log.debug('cannot pause accepting; serving concurrent clients');
    if (this.status.ready) this.status.notify(MASTER_SERVICE_UNAVAILABLE);
    this.status.notify(MASTER_SERVICE_CONNECTION);
    this.life.opened();
    const peer = peerOf(sock);
    this.service.log.debug(`accepted connection from ${formatPeer(peer)}`);
    sock.on('error', () => undefined);
    void this.service.serve(sock, sock, peer).done.then(() => {
      sock.destroy();
      this.served();
    });
  }

  /** A connection is over: exit (-U reached, or signalled meanwhile), or be ready for the next. */
  private served(): void {
    this.life.closed(); // may exit: -U reached
    if (!this.shell.running || this.life.connections > 0) return;
    if (this.signal !== null) return this.exit(`${this.signal} after the connection in progress`);
    this.status.notify(MASTER_SERVICE_AVAILABLE);
    if (this.life.accepting) this.gate.resume();
  }

  signalled(sig: Signal): void {
    if (this.life.connections === 0) return this.exit(sig);
    this.signal ??= sig;
    this.gate.pause();
    if (sig === 'SIGHUP') {
      // The master reloads: a fresh worker will replace us. Closing on the client now would
      // race with a request it may be sending, so the connection ends as it would have
      // (the client closes it, or smmapd_timeout does), and we exit then.
      this.service.log.info('SIGHUP: exiting after the connection in progress');
      return;
    }
    // Shutdown: the master waits for us, so answer what has arrived, close, and go.
    this.shell.drain(sig, () => this.gate.pause(), this.service.cfg.shutdownTimeoutMs, false);
  }

  /**
   * A master that died without signalling us (SIGKILL) leaves idle children waiting for ever:
   * when we are re-parented, go.
   */
  watchParent(): void {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent && this.life.connections === 0) this.exit('the master is gone');
    }, PARENT_CHECK_MS).unref();
  }
}
