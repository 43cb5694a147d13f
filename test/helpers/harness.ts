// The one test harness, used by the tests and by bench/: everything of base.ts (the built
// programs as package.json's bin names them, ports, waiting, smmapctl and the daemon as real
// processes, process bookkeeping) and the real peers: Cyrus 3.6 and its master(8), Postfix,
// Sendmail, a private Cyrus Murder, a syslog receiver, the smload load generator. daemon.ts, ctl.ts and procs.ts
// keep their old names. Nothing here imports vitest (bench/ runs it under plain node).
export * from './base';

// The real peers (each module documents its pitfalls).
export { ADMIN, createMany, cyrusAvailable, populate, startCyrus, type Cyrus, type CyrusOptions } from './cyrus';
export { masterAvailable, startMaster, type RunningMaster } from './master';
export { murderMissing, startMurder, type Murder } from './murder';
export { postfixAvailable, postmapBatch, postmapQuery, startSmtpd, type Smtpd } from './postfix';
export { Sendmail, sendmailRoot, unshareWorks } from './sendmail';
export { startSyslogReceiver, type SyslogReceiver } from './syslog';
export { gccAvailable, parseLoad, runLoad, smloadBinary, type LoadResult } from './load';
