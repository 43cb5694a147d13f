// The one mapping from configuration (and -p) to the checks' options, shared by the daemon
// and `smmapctl query` so both answer alike.
import { separatorOf, type Config } from './config';
import type { CheckOptions } from './core/checks';

export function checkOptions(cfg: Config, skipPlus: boolean): CheckOptions {
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
