// The built daemon as a real process: these names now live in the harness (base.ts,
// re-exported by harness.ts).
export { freePort, ROOT, SMMAPCTL, SMMAPD, spawnSmmapd, startDaemon, tempConfig, waitForPort, type RunningDaemon } from './base';
