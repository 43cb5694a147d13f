// Ends the run with the plain closing line CI reads: `tests: N passed, N failed, N skipped`.
import type { File, Reporter, Task } from 'vitest';

function count(tasks: readonly Task[], tally: Record<'passed' | 'failed' | 'skipped', number>): void {
  for (const t of tasks) {
    if (t.type === 'suite') {
      count(t.tasks, tally);
      // a suite that failed outside its tests (beforeAll) counts as one failure
      if (t.result?.state === 'fail' && t.tasks.every((c) => c.result?.state !== 'fail')) tally.failed++;
      continue;
    }
    const state = t.result?.state;
    if (state === 'pass') tally.passed++;
    else if (state === 'fail') tally.failed++;
    else tally.skipped++;
  }
}

export default class SummaryReporter implements Reporter {
  onFinished(files: File[] = [], errors: unknown[] = []): void {
    const tally = { passed: 0, failed: 0, skipped: 0 };
    for (const f of files) {
      count(f.tasks, tally);
      if (f.result?.state === 'fail' && f.tasks.length === 0) tally.failed++;
    }
    tally.failed += errors.length;
    process.stdout.write(`\ntests: ${tally.passed} passed, ${tally.failed} failed, ${tally.skipped} skipped\n`);
  }
}
