// The channel between the listener's primary and its workers (node:cluster IPC). Every
// message carries `smmapd: <kind>`; a kind nobody handles is ignored, so a feature can add
// its own kinds (e.g. metrics a worker reports) with a handler on each side.

/** From a worker to the primary. */
export type WorkerMsg =
  | { smmapd: 'ready' }
  | { smmapd: 'opened' }
  | { smmapd: 'closed' }
  /** A listen address cannot be bound: the primary ends the daemon (EX_TEMPFAIL) rather than restart. */
  | { smmapd: 'bind-failed'; message: string };

/** From the primary to a worker. */
export type PrimaryMsg = { smmapd: 'stop-accepting' } | { smmapd: 'shutdown' };

/** Any message of ours, by kind; anything else that arrives on the channel is not. */
export function kindOf(m: unknown): string | null {
  if (typeof m !== 'object' || m === null) return null;
  const k = (m as { smmapd?: unknown }).smmapd;
  return typeof k === 'string' ? k : null;
}
