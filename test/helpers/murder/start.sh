#!/bin/bash
# The project's copy of the private-Murder recipe written by the session that filed issue 17
# (its start.sh; credit there): test/integration/murder.test.ts builds with it.
# Changes: MURDER_NS and MURDER_DIR are required (each test run has its own), and a missing
# cyrus-murder is reported (exit 2), never installed (.ci/install-peers installs it).
# Build a private Cyrus 3.6 Murder from nothing, inside a network namespace of its own:
#   mupdate master  127.0.0.10:3905  (mupdate -m)
#   backend be1     127.0.0.11       imapd :143, lmtpd :24, smmapd :12345, pushes to the master
#   backend be2     127.0.0.12       same
#   frontend fe     127.0.0.20       imapd :143 (proxy), lmtpd :24 (proxy), smmapd :12345,
#                                     mupdate slave (unix socket)
# Why a namespace: Cyrus's frontend smmapd asks the backend's smmapd on port 12345, hard-coded
# (imap/smmapd.c: "XXX port should be configurable"), the IMAP proxy dials service "imap" (143)
# and the LMTP proxy service "lmtp" of each backend's servername; so each server needs its own
# address with the standard ports. The namespace gives 127.0.0.0/8 of its own (nothing else on
# the machine sees or collides with it); privileged ports are opened to the cyrus user there only.
# Reach it with: ip netns exec $MURDER_NS <command>   (printed as MURDER_EXEC).
# Pitfalls met: Debian 12's /etc/services has no "lmtp" nor "mupdate" (getaddrinfo fails), so the
# masters run in a mount namespace with a private copy that has them, and mupdate_server is
# written host:port (the mupdate client ignores mupdate_port); SASL's default realm is each
# server's servername, so every account exists once per realm; a new top-level mailbox gets
# defaultacl "anyone lrs" (a "hidden" shared folder needs its anyone entry deleted); there is no
# /dev/log here, so Cyrus's syslog lines are lost (master -L keeps only stderr).
# Idempotent: a second run stops the first build (stop.sh) and builds again, ~20 s.
#
# Usage: start.sh            build (tears down a previous build of the same NS/DIR first)
#        start.sh up be2     start one server again (be1|be2|fe|mup) after stop.sh be2
# Env:   MURDER_NS, MURDER_DIR (required; DIR under /tmp: stop.sh removes it)
# Prints shell variables on stdout (progress goes to stderr): eval "$(./start.sh)"
set -euo pipefail
NS=${MURDER_NS:?set MURDER_NS}
DIR=${MURDER_DIR:?set MURDER_DIR}
BIN=/usr/lib/cyrus/bin
HERE=$(cd "$(dirname "$0")" && pwd)
MUP=127.0.0.10; BE1=127.0.0.11; BE2=127.0.0.12; FE=127.0.0.20
PW=secret
# Cyrus 3.6 smmapd loops for ever on a byte that is not a digit where a netstring length should
# be (getint32 puts it back; fixed in 3.13.4), and the frontend's proxy request to a backend ends
# in such a byte ("N:cyrus KEY,\x04"): every proxied lookup leaves a backend smmapd spinning at
# 100% CPU. On a shared machine each smmapd therefore runs with a CPU-time limit (SIGXCPU after
# 1 s of CPU, SIGKILL after 2); master starts a new one. Set SMMAP_WRAP= (empty) to see the loop.
SMMAP_WRAP=${SMMAP_WRAP-/usr/bin/prlimit --cpu=1:2}
T0=$(date +%s)
X() { ip netns exec "$NS" "$@"; }

[ "$(id -u)" = 0 ] || { echo "start.sh: run as root (network namespace, su cyrus)" >&2; exit 1; }
[ -x $BIN/imapd ] || { echo "start.sh: Cyrus missing: apt-get install -y cyrus-imapd" >&2; exit 1; }
[ -x $BIN/mupdate ] || { echo "start.sh: cyrus-murder missing (.ci/install-peers)" >&2; exit 2; }

addr_of() { case $1 in mup) echo $MUP;; be1) echo $BE1;; be2) echo $BE2;; fe) echo $FE;; esac; }

# wait until HOST:PORT accepts inside the namespace (at most ~10 s)
wait_port() {
  local i
  for i in $(seq 100); do
    X bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "start.sh: $1:$2 did not open; see $DIR/*/log/master.err" >&2; return 1
}

# start one server's master (as cyrus, in the namespace, in a mount namespace where
# /etc/services knows lmtp/mupdate: the LMTP proxy dials service "lmtp", absent from Debian 12's)
up() {
  local s=$1 a; a=$(addr_of "$s")
  local D=$DIR/$s
  [ -f "$D/run/master.pid" ] && kill -0 "$(cat "$D/run/master.pid")" 2>/dev/null && return 0
  rm -f "$D/run/master.pid" "$D"/run/socket/* 2>/dev/null || true
  X sh -c "mount --bind $DIR/etc/services /etc/services &&
           exec su -s /bin/sh cyrus -c '$BIN/master -C $D/imapd.conf -M $D/cyrus.conf -p $D/run/master.pid -L $D/log/master.err -d'"
  case $s in
    mup) wait_port $a 3905 ;;
    fe)  wait_port $a 143; wait_port $a 12345 ;;
    *)   wait_port $a 143; wait_port $a 24; wait_port $a 12345 ;;
  esac
}

if [ "${1:-}" = up ]; then
  for s in "${@:2}"; do up "$s"; done
  exit 0
fi

# ---- from nothing ----
"$HERE/stop.sh" >/dev/null 2>&1 || true
ip netns add "$NS"
X ip link set lo up
X sysctl -q -w net.ipv4.ip_unprivileged_port_start=0   # this namespace only
mkdir -p "$DIR/etc"
{ cat /etc/services; printf 'lmtp\t\t24/tcp\nmupdate\t\t3905/tcp\n'; } > "$DIR/etc/services"

# one sasldb for all four; SASL's default realm is each server's servername
rm -f "$DIR/sasldb2"
for realm in $MUP $BE1 $BE2 $FE; do
  for u in cyrus murder; do echo $PW | saslpasswd2 -p -c -f "$DIR/sasldb2" -u $realm $u; done
done

common() { # $1 server dir, $2 servername
  cat <<CONF
configdirectory: $1/conf
proc_path: $1/run/proc
mboxname_lockpath: $1/run/lock
defaultpartition: default
partition-default: $1/spool
servername: $2
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $DIR/sasldb2
sasl_mech_list: PLAIN LOGIN
lmtp_downcase_rcpt: yes
unixhierarchysep: no
altnamespace: no
virtdomains: off
lmtpsocket: $1/run/socket/lmtp
idlesocket: $1/run/socket/idle
notifysocket: $1/run/socket/notify
statuscache: no
CONF
}

for s in mup be1 be2 fe; do
  D=$DIR/$s; a=$(addr_of $s)
  mkdir -p $D/{conf,spool,run/socket,run/proc,run/lock,log} $D/conf/{db,proc,socket,log,user,quota,sieve}
  common $D $a > $D/imapd.conf
  case $s in
    mup)
      echo "admins: cyrus murder" >> $D/imapd.conf
      cat > $D/cyrus.conf <<CONF
START {
  recover cmd="$BIN/ctl_cyrusdb -C $D/imapd.conf -r"
}
SERVICES {
  mupdate cmd="$BIN/mupdate -C $D/imapd.conf -m" listen="$a:3905" prefork=1
}
EVENTS {
}
CONF
      ;;
    be1|be2)
      cat >> $D/imapd.conf <<CONF
admins: cyrus
mupdate_server: $MUP:3905
mupdate_authname: murder
mupdate_password: $PW
proxyservers: murder
lmtp_admins: murder
proxy_authname: murder
proxy_password: $PW
CONF
      cat > $D/cyrus.conf <<CONF
START {
  recover cmd="$BIN/ctl_cyrusdb -C $D/imapd.conf -r"
  mupdatepush cmd="$BIN/ctl_mboxlist -C $D/imapd.conf -m"
}
SERVICES {
  imap  cmd="$BIN/imapd -C $D/imapd.conf -U 30" listen="$a:143" prefork=0 maxchild=50
  lmtp  cmd="$BIN/lmtpd -C $D/imapd.conf" listen="$a:24" prefork=0 maxchild=10
  smmap cmd="$SMMAP_WRAP $BIN/smmapd -C $D/imapd.conf" listen="$a:12345" prefork=1 maxchild=50
}
EVENTS {
}
CONF
      ;;
    fe)
      cat >> $D/imapd.conf <<CONF
admins: cyrus
mupdate_server: $MUP:3905
mupdate_authname: murder
mupdate_password: $PW
proxy_authname: murder
proxy_password: $PW
serverlist: $BE1 $BE2
CONF
      cat > $D/cyrus.conf <<CONF
START {
  recover cmd="$BIN/ctl_cyrusdb -C $D/imapd.conf -r"
}
SERVICES {
  mupdate cmd="$BIN/mupdate -C $D/imapd.conf" listen="$D/run/socket/mupdate" prefork=1
  imap  cmd="$BIN/imapd -C $D/imapd.conf -U 30" listen="$a:143" prefork=0 maxchild=50
  lmtp  cmd="$BIN/lmtpd -C $D/imapd.conf -a" listen="$a:24" prefork=0 maxchild=10
  smmap cmd="$SMMAP_WRAP $BIN/smmapd -C $D/imapd.conf" listen="$a:12345" prefork=1 maxchild=50
}
EVENTS {
}
CONF
      ;;
  esac
done
chown -R cyrus:mail "$DIR"
chmod 0640 "$DIR/sasldb2"

up mup; up be1; up be2; up fe
echo "murder: servers up after $(( $(date +%s) - T0 )) s" >&2

# ---- mailboxes: created on each backend as its admin (each backend pushes them to the
# mupdate master, whose frontend slave copies them); mail delivered through the frontend's
# LMTP proxy; quotas set on the backends (a frontend only proxies SETQUOTA for a whole tree)
X env BE1=$BE1 BE2=$BE2 FE=$FE PW=$PW python3 - <<'PY'
import imaplib, os, smtplib, sys, time
BE1, BE2, FE, PW = os.environ['BE1'], os.environ['BE2'], os.environ['FE'], os.environ['PW']
def login(host):
    m = imaplib.IMAP4(host, 143); m.login('cyrus', PW); return m
def ok(r, what):
    if r[0] != 'OK': sys.exit('fixture: %s: %r' % (what, r))
plan = {
  BE1: dict(users=['fred', 'full', 'roomy'], subs=['fred.lists', 'fred.Sent'],
            shared={'shared1.post': 'lrsp', 'shared1.nopost': 'lrs', 'shared1.hidden': None},
            quota={'full': 1, 'roomy': 100000}),
  BE2: dict(users=['wilma', 'full2', 'roomy2'], subs=['wilma.work'],
            shared={'shared2.post': 'lrsp', 'shared2.nopost': 'lrs'},
            quota={'full2': 1, 'roomy2': 100000}),
}
names = []
for host, p in plan.items():
    m = login(host)
    for u in p['users']:
        ok(m.create('user.' + u), 'create user.' + u); names.append('user.' + u)
    for s in p['subs']:
        ok(m.create('user.' + s), 'create user.' + s); names.append('user.' + s)
    for s, rights in p['shared'].items():
        ok(m.create(s), 'create ' + s); names.append(s)
        # a new top-level mailbox gets defaultacl (anyone lrs): hidden = no anyone entry at all
        if rights: ok(m.setacl(s, 'anyone', rights), 'setacl ' + s)
        else: ok(m.deleteacl(s, 'anyone'), 'deleteacl ' + s)
    m.logout()
# wait (at most 20 s) until the frontend lists every mailbox: the slave's copy lags a little
t = time.time()
while True:
    m = login(FE); typ, rows = m.list(); m.logout()
    seen = {r.decode().rsplit(' ', 1)[-1].strip('"') for r in rows if r}
    if set(names) <= seen: break
    if time.time() - t > 20: sys.exit('fixture: frontend lists %d of %d mailboxes' % (len(set(names) & seen), len(names)))
    time.sleep(0.3)
print('fixture: frontend lists all %d mailboxes after %.1f s' % (len(names), time.time() - t), file=sys.stderr)
# one 3 KiB message to each quota user, through the frontend's LMTP proxy (-a: preauth)
msg = 'From: t@example.org\r\nSubject: fill\r\n\r\n' + ('x' * 76 + '\r\n') * 40
lm = smtplib.LMTP(FE, 24)
for host, p in plan.items():
    for u in p['quota']:
        refused = lm.sendmail('t@example.org', [u], msg)
        if refused: sys.exit('fixture: lmtp refused %r' % refused)
lm.quit()
# quotas on the backends: STORAGE 1 KiB under 3 KiB used = over; 100000 KiB = under
for host, p in plan.items():
    m = login(host)
    for u, kib in p['quota'].items():
        ok(m.setquota('user.' + u, '(STORAGE %d)' % kib), 'setquota ' + u)
    m.logout()
PY

cat <<VARS
MURDER_NS=$NS
MURDER_DIR=$DIR
MURDER_EXEC="ip netns exec $NS"
MUPDATE=$MUP:3905
BE1=$BE1 BE1_IMAP=$BE1:143 BE1_LMTP=$BE1:24 BE1_SMMAP=$BE1:12345 BE1_CONF=$DIR/be1/imapd.conf BE1_PIDFILE=$DIR/be1/run/master.pid
BE2=$BE2 BE2_IMAP=$BE2:143 BE2_LMTP=$BE2:24 BE2_SMMAP=$BE2:12345 BE2_CONF=$DIR/be2/imapd.conf BE2_PIDFILE=$DIR/be2/run/master.pid
FE=$FE FE_IMAP=$FE:143 FE_LMTP=$FE:24 FE_SMMAP=$FE:12345 FE_CONF=$DIR/fe/imapd.conf FE_PIDFILE=$DIR/fe/run/master.pid
MUP_CONF=$DIR/mup/imapd.conf MUP_PIDFILE=$DIR/mup/run/master.pid
MURDER_ADMIN=cyrus MURDER_PASSWORD=$PW MURDER_PROXY_USER=murder
VARS
echo "murder: built in $(( $(date +%s) - T0 )) s" >&2
