// The one retry schedule of the daemon (directory hosts, the IMAP server and its Murder
// backends, worker forks and restarts): the delay doubles with each failure, from `minMs`
// after the first to at most `maxMs`.
export function backoffDelay(failures: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.max(0, failures - 1));
}
