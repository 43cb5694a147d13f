// A service of Cyrus master(8), following master/service.c. The master hands us the
// listening socket as fd 4 and a status pipe as fd 3 (CYRUS_SERVICE, CYRUS_ID set). We
// accept on fd 4 ourselves, one connection at a time, and tell the master each change of
// state with 8 bytes on fd 3 (native-endian int32 message, int32 pid):
//   UNAVAILABLE on accepting, CONNECTION before serving, AVAILABLE when ready for the next,
//   UNAVAILABLE before exiting while counted as ready.
// The master counts a new child as ready without a message, forks another when one says
// UNAVAILABLE (up to maxchild), and disables a service whose ready children exit abnormally
// five times in ten seconds: every exit path tells it first (leaveMaster()).
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
import { Lifecycle, type LifecycleLimits } from './lifecycle';
import { peerOf, type Service } from './service';

const STATUS_FD = 3;
const LISTEN_FD = 4;

export const MASTER_SERVICE_AVAILABLE = 1;
export const MASTER_SERVICE_UNAVAILABLE = 2;
export const MASTER_SERVICE_CONNECTION = 3;

/** What the master believes of us: 'ready' from birth until we say UNAVAILABLE. */
let state: 'ready' | 'busy' = 'ready';
let masterGone = false;

function notify(msg: number): void {
  if (masterGone) return;
  const b = Buffer.alloc(8);
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
    masterGone = true; // EPIPE/EBADF: nobody to tell (SIGPIPE is ignored by Node)
  }
  if (msg === MASTER_SERVICE_AVAILABLE) state = 'ready';
  else if (msg === MASTER_SERVICE_UNAVAILABLE) state = 'busy';
}

/** Before any exit: a ready child that vanishes silently counts as an abnormal exit. */
export function leaveMaster(): void {
  if (state === 'ready') notify(MASTER_SERVICE_UNAVAILABLE);
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

export async function runCyrusMaster(makeService: () => Service, limits: LifecycleLimits): Promise<void> {
  const service = makeService();
  const log = service.log;
  const name = process.env.CYRUS_SERVICE ?? 'smmapd';
  const server = net.createServer({ allowHalfOpen: true, noDelay: true });
  const gate = new AcceptGate(server);
  let exiting = false;
  let signalled: string | null = null;

  const exit = (why: string, code = 0): void => {
    if (exiting) return;
    exiting = true;
    log.debug(`exiting: ${why}`);
    leaveMaster();
    gate.pause();
    const done = (): never => process.exit(code);
    setTimeout(done, 2000).unref();
    void Promise.allSettled([service.close(), log.close()]).then(done);
  };

  const life = new Lifecycle(
    { uses: limits.uses, timeoutSec: randomisedTimeout(limits.timeoutSec) },
    () => gate.pause(),
    (why) => exit(why),
  );

  server.on('connection', (sock: net.Socket) => {
    if (exiting) {
      // Only when libuv accepted in the same poll event as our exit: hand it back cleanly.
      sock.destroy();
      return;
    }
    // Busy: leave further clients in the listen queue for an idle sibling (or a fresh child).
    if (!gate.pause() && life.connections === 0) log.debug('cannot pause accepting; serving concurrent clients');
    if (state === 'ready') notify(MASTER_SERVICE_UNAVAILABLE);
    notify(MASTER_SERVICE_CONNECTION);
    life.opened();
    log.debug(`accepted connection from ${peerOf(sock)}`);
    sock.on('error', () => undefined);
    void service.serve(sock, sock, peerOf(sock)).done.then(() => {
      sock.destroy();
      life.closed(); // may exit: -U reached
      if (exiting || life.connections > 0) return;
      if (signalled !== null) return exit(`${signalled} after the connection in progress`);
      notify(MASTER_SERVICE_AVAILABLE);
      if (life.accepting) gate.resume();
    });
  });
  server.on('error', (e) => {
    log.error(`accept on fd ${LISTEN_FD} failed: ${e.message}`);
    exit('accept failed', 71);
  });

  try {
    await listenOnFd(server, LISTEN_FD);
  } catch (e) {
    log.error(`cannot listen on fd ${LISTEN_FD} (is this a Cyrus master(8) service?): ${(e as Error).message}`);
    exit('no listening socket', 71);
    return;
  }

  const onSignal = (sig: NodeJS.Signals): void => {
    if (life.connections === 0) return exit(sig);
    signalled ??= sig;
    gate.pause();
    if (sig === 'SIGHUP') {
      // The master reloads: a fresh worker will replace us. Closing on the client now would
      // race with a request it may be sending, so the connection ends as it would have
      // (the client closes it, or smmapd_timeout does), and we exit then.
      log.info('SIGHUP: exiting after the connection in progress');
      return;
    }
    // Shutdown: the master waits for us, so answer what has arrived, close, and go.
    service.drainAll();
    setTimeout(() => exit(`${sig}: connection still open after ${service.cfg.shutdownTimeoutMs} ms`), service.cfg.shutdownTimeoutMs).unref();
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP'] as const) process.on(sig, () => onSignal(sig));

  // A master that died without signalling us (SIGKILL) leaves idle children waiting for ever:
  // when we are re-parented, go.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent && life.connections === 0) exit('the master is gone');
  }, 2000).unref();

  log.debug(`${name}: serving on fd ${LISTEN_FD} (-U ${limits.uses}, -T ${limits.timeoutSec})`);
}
