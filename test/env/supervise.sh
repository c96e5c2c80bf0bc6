#!/usr/bin/env bash
# Runs a command and ties its life to the parent's: the parent holds this script's stdin open, and
# when it closes (the parent exited, however it died) the command is terminated. SIGTERM and
# SIGINT are passed on. This is what keeps a crashed test run from leaving etcd or an apiserver behind.
set -u
# Background jobs get /dev/null as stdin, so keep the parent's pipe on fd 3 for the watcher.
exec 3<&0
"$@" </dev/null 3<&- &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
( while read -r _ <&3; do :; done; kill -TERM "$child" 2>/dev/null; sleep 10; kill -KILL "$child" 2>/dev/null ) &
watcher=$!
wait "$child"
rc=$?
# wait returns early when a trapped signal arrives; wait again for the child to really exit.
while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
kill "$watcher" 2>/dev/null
exit "$rc"
