// The built daemon as a real process: these names now live in the one harness (harness.ts).
export { freePort, ROOT, SMMAPCTL, SMMAPD, spawnSmmapd, startDaemon, tempConfig, waitForPort, type RunningDaemon } from './harness';
