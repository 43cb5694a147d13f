// A record of the checks one answer went through, for `smmapctl explain`. The checks call it
// only when one is given, so the daemon's path pays a test for undefined and nothing more.

/** One step: a short name (`split`, `mailbox`, `deny`, ...) and what was found. */
export type Trace = (step: string, text: string) => void;
