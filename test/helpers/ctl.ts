// The built smmapctl as a real process, as an admin runs it: these names now live in the one
// harness (harness.ts).
export { buildOnce, ctlBatch, ctlOk, ROOT, runCtl, SMMAPCTL, tempConfig, type CtlResult } from './harness';
