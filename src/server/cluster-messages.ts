// The messages between the listener's primary and its workers (node:cluster IPC). Every
// message carries `smmapd: <kind>`, and each side ignores the kinds it does not handle, so
// two features share the channel: a worker's life (the kinds below: worker.ts sends and
// obeys, primary.ts counts and commands) and the figures a scrape gathers from the workers
// (`metrics-request` and `metrics`, both sides in metrics-http.ts).

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
