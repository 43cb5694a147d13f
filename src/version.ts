// package.json's version: what --version prints, the start line names and /metrics labels
// smmapd_build_info with (bundled into each program by scripts/bundle.js).
export const VERSION: string = (require('../package.json') as { version: string }).version;
