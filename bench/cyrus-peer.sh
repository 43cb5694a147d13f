#!/bin/bash
# bench/cyrus-peer.sh [DIR] [USERS] [IMAP_PORT] [SMMAP_PORT]
# The yardstick: a private Cyrus IMAP 3.6 (Debian cyrus-imapd) on loopback with its own
# smmapd (one process per connection, under master), loaded with the same data set as
# `npm run bench` (bench/dataset.ts): mailboxes through `ctl_mboxlist -u`, quota roots
# through `cyr_dbtool ... quotalegacy set`. Then:  PEER=127.0.0.1:SMMAP_PORT npm run bench
# Stop it with: kill $(cat DIR/run/master.pid)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/tmp/smmapd-cyrus-peer}; USERS=${2:-100000}; IMAP=${3:-16143}; SMMAP=${4:-16144}
BIN=/usr/lib/cyrus/bin
[ -x $BIN/master ] || { echo "cyrus-imapd is not installed (apt-get install cyrus-imapd)" >&2; exit 1; }
[ -f "$DIR/run/master.pid" ] && kill "$(cat "$DIR/run/master.pid")" 2>/dev/null && sleep 1
rm -rf "$DIR"; mkdir -p "$DIR"/{conf,spool,run/socket,run/lock,data}
cat > "$DIR/imapd.conf" <<CONF
configdirectory: $DIR/conf
mboxname_lockpath: $DIR/run/lock
defaultpartition: default
partition-default: $DIR/spool
admins: cyrus
unixhierarchysep: no
virtdomains: off
lmtp_downcase_rcpt: yes
statuscache: no
lmtpsocket: $DIR/run/socket/lmtp
idlesocket: $DIR/run/socket/idle
notifysocket: $DIR/run/socket/notify
CONF
cat > "$DIR/cyrus.conf" <<CONF
START {
  recover cmd="$BIN/ctl_cyrusdb -C $DIR/imapd.conf -r"
}
SERVICES {
  smmap cmd="$BIN/smmapd -C $DIR/imapd.conf" listen="127.0.0.1:$SMMAP" prefork=8 maxchild=64
}
EVENTS {
}
CONF
mkdir -p "$DIR"/conf/{db,proc,socket,log,user,quota,sieve}
( cd "$ROOT" && npx tsc -p bench >/dev/null && node dist/devtools/bench/dataset.js "$USERS" "$DIR/data" )
chown -R cyrus:mail "$DIR"
as_cyrus() { setpriv --reuid=cyrus --regid=mail --init-groups "$@"; }
as_cyrus $BIN/ctl_mboxlist -C "$DIR/imapd.conf" -u < "$DIR/data/mboxlist.json"
as_cyrus $BIN/cyr_dbtool -C "$DIR/imapd.conf" "$DIR/conf/quota" quotalegacy set < "$DIR/data/quotas.txt"
as_cyrus $BIN/master -C "$DIR/imapd.conf" -M "$DIR/cyrus.conf" -p "$DIR/run/master.pid" -d
for i in $(seq 50); do (echo > /dev/tcp/127.0.0.1/$SMMAP) 2>/dev/null && break; sleep 0.2; done
echo "cyrus smmapd with $USERS users on 127.0.0.1:$SMMAP (stop: kill \$(cat $DIR/run/master.pid))"
