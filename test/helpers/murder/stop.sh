#!/bin/bash
# The project's copy of the stop.sh of issue 17's Murder recipe (credit there),
# MURDER_NS and MURDER_DIR required. Stop the private Murder of start.sh.
#   stop.sh            everything: every master (by its pid file), every process left in the
#                      namespace (ip netns pids: only ours live there), the namespace, the dir
#   stop.sh be2 [...]  only those servers' masters (SIGTERM to the pid in their pid file;
#                      master takes its children down), leaving the rest running
# Env: MURDER_NS, MURDER_DIR (required)
NS=${MURDER_NS:?set MURDER_NS}
DIR=${MURDER_DIR:?set MURDER_DIR}

stop_master() { # $1 server; TERM, wait up to 5 s, then KILL the master and its children
  local f=$DIR/$1/run/master.pid p i
  [ -f "$f" ] || return 0
  p=$(cat "$f")
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || { rm -f "$f"; return 0; }
  kill -TERM "$p" 2>/dev/null
  for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then
    for c in $(ps -o pid= --ppid "$p"); do kill -KILL "$c" 2>/dev/null; done; kill -KILL "$p" 2>/dev/null
  fi
  rm -f "$f"
}

if [ $# -gt 0 ]; then
  for s in "$@"; do stop_master "$s"; done
  exit 0
fi

for s in fe be1 be2 mup; do stop_master $s; done
if ip netns list 2>/dev/null | grep -qw "^$NS"; then
  for i in 1 2 3; do
    pids=$(ip netns pids "$NS" 2>/dev/null)
    [ -z "$pids" ] && break
    for p in $pids; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.5
  done
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  ip netns del "$NS"
fi
case "$DIR" in /tmp/?*) rm -rf "$DIR" ;; *) echo "stop.sh: not removing $DIR (not under /tmp)" >&2 ;; esac
echo "murder stopped (ns $NS, dir $DIR)"
