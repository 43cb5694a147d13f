// Cyrus's -U/-T process limits (master/service.c): serve at most `uses` connections, and
// once one was served, exit after `timeoutSec` without a new one. The owner decides what
// "stop accepting" and "exit" mean for its process model.

/** Cyrus's defaults where a supervisor starts us (master(8), socket activation): -U 250 -T 60. */
export const SUPERVISED_DEFAULTS: LifecycleLimits = { uses: 250, timeoutSec: 60 };

export interface LifecycleLimits {
  /** Connections before the process stops accepting and exits when they end; 0 = no limit. */
  readonly uses: number;
  /** Idle seconds (no connection open) before exit, counted once one was served; 0 = never. */
  readonly timeoutSec: number;
}

export class Lifecycle {
  private served = 0;
  private active = 0;
  private stopped = false;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly limits: LifecycleLimits,
    private readonly stopAccepting: () => void,
    private readonly exit: (why: string) => void,
  ) {}

  get connections(): number {
    return this.active;
  }

  get accepting(): boolean {
    return !this.stopped;
  }

  opened(): void {
    this.served++;
    this.active++;
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    if (this.limits.uses > 0 && this.served >= this.limits.uses) this.stop();
  }

  closed(): void {
    this.active--;
    if (this.active > 0) return;
    if (this.stopped) return this.exit(`served ${this.served} connection(s), the -U limit`);
    if (this.limits.timeoutSec > 0) {
      this.idleTimer = setTimeout(() => {
        this.stop();
        this.exit(`idle for ${this.limits.timeoutSec} s (-T)`);
      }, this.limits.timeoutSec * 1000);
      this.idleTimer.unref();
    }
  }

  /** Stop taking connections (limit reached, or shutdown). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopAccepting();
  }
}
