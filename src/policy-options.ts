// The one mapping from configuration (and -p) to the policy's options, shared by the daemon
// and `smmapctl query` so both answer alike.
import { separatorOf, type Config } from './config';
import type { PolicyOptions } from './core/policy';

export function policyOptions(cfg: Config, skipPlus: boolean): PolicyOptions {
  return {
    resolve: {
      virtdomains: cfg.virtdomains,
      defaultdomain: cfg.defaultdomain,
      postuser: cfg.postuser,
      downcase: cfg.lmtpDowncaseRcpt,
      separator: separatorOf(cfg),
      skipPlus,
    },
    serviceName: cfg.serviceName,
    overQuotaPerm: cfg.lmtpOverQuotaPermFailure,
  };
}
