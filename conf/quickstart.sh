#!/bin/sh
# npm start: seed an example store (once) and run smmapd on 127.0.0.1:12345 in the foreground.
set -e
cd "$(dirname "$0")/.."
mkdir -p var
[ -f var/smmapd.db ] || node dist/cli/smmapctl.js -C conf/quickstart.conf batch conf/quickstart.batch
cat <<MSG
smmapd: example store var/smmapd.db; listening on 127.0.0.1:12345. In another terminal:
  node dist/cli/smmapctl.js -C conf/quickstart.conf query fred fred+lists nosuch full closed +shared/support +shared/announce
  postmap -q fred socketmap:inet:127.0.0.1:12345:smmapd
MSG
exec node dist/cli/smmapd.js -C conf/quickstart.conf --listen inet:127.0.0.1:12345
