// The one deadline of the daemon's waits on a server (a directory lookup, an IMAP job): a
// promise raced against a time, which an IMAP job that is still receiving may push back.
// At the deadline the caller's `onLate` runs first (drop the connection: a late answer must
// never be read as the next one's), then the promise rejects with the caller's error; what
// the abandoned promise does afterwards is ignored.

/** A point in time (Date.now() ms) that may be pushed later. */
export class Deadline {
  constructor(private at: number) {}

  /** `ms` from now. */
  static in(ms: number): Deadline {
    return new Deadline(Date.now() + ms);
  }

  get until(): number {
    return this.at;
  }

  get left(): number {
    return this.at - Date.now();
  }

  /** Push the deadline to `ms` from now (a long answer that keeps coming is not a wedged server). */
  extend(ms: number): void {
    this.at = Math.max(this.at, Date.now() + ms);
  }
}

/** `p`, or `late()` at the deadline (`until`: a Date.now() time, Infinity for none), after calling `onLate`. */
export function within<T>(p: Promise<T>, until: number | Deadline, late: () => Error, onLate: () => void = () => undefined): Promise<T> {
  if (until === Infinity) return p;
  const left = typeof until === 'number' ? (): number => until - Date.now() : (): number => until.left;
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout;
    const arm = (): void => {
      timer = setTimeout(() => {
        // the deadline moved while we slept: sleep on
        if (left() > 0) return arm();
        onLate();
        reject(late());
      }, Math.max(0, left()));
    };
    arm();
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
