// smmapctl query: answer keys exactly as the daemon would, through the same store driver,
// policy and options.
import { verify } from '../core/checks';
import { replyPayload } from '../core/reply';
import { checkOptions } from '../check-options';
import { openStore } from '../store/registry';
import { queryMap } from './maps';
import { KEYS_ARG, SKIP_PLUS_OPTION, type CommandSpec } from './spec';

export const queryCommand: CommandSpec = {
  words: ['query'],
  args: [KEYS_ARG],
  options: [
    SKIP_PLUS_OPTION,
    { long: 'map', value: 'NAME', description: 'ask the directory map NAME (smmapd_map_NAME) instead of the Cyrus verification' },
  ],
  summary: 'print the reply the daemon would send for each key, one per line',
  details: 'A key starting with - needs -- before it. The exit status is 0 whatever the answers.',
  batch: false,
  async run(ctx, keys, opts) {
    if (typeof opts['map'] === 'string') return queryMap(ctx, opts['map'], keys);
    // The replies are the daemon's (a few words); what the daemon would log goes to stderr.
    const store = openStore(ctx.cfg, (msg) => void process.stderr.write(`smmapctl: ${msg}\n`));
    try {
      const o = checkOptions(ctx.cfg, opts['skipPlus'] === true);
      for (const key of keys) ctx.out(replyPayload(await verify(key, store, o)));
    } finally {
      await store.close();
    }
  },
};
