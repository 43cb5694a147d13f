// The built smmapctl as a real process, as an admin runs it: these names now live in the
// harness (base.ts, re-exported by harness.ts).
export { buildOnce, ctlBatch, ctlOk, ROOT, runCtl, SMMAPCTL, tempConfig, type CtlResult } from './base';
