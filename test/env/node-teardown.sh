#!/usr/bin/env bash
# Removes from this machine what a test node (test/env/node.ts) made outside its directory, and
# ends its processes. It runs when the node stops and, through the reaper mode, when the process
# that started the node dies without stopping it (a killed test worker), so that no containers,
# mounts, network namespaces, bridge, nat rules, cgroups or changed kernel settings outlive a run. Idempotent.
#
# The node is named by environment variables, not arguments, so that this script's own command
# line does not match the node directory it looks for in others':
#   NODE_DIR       the node's directory (unique: under a mkdtemp directory)
#   NODE_NAME      the Node name, also its cgroup root under each /sys/fs/cgroup/<controller>/
#   NODE_BRIDGE    the bridge of its pod network
#   NODE_SUBNET    the first three octets of its pod subnet with the dot, such as `10.213.7.`
#   NODE_TUNABLES  a file of `<path under /proc/sys> <value>` lines to put back
#
# Usage: node-teardown.sh           tear down now
#        node-teardown.sh --reaper  wait until stdin closes (the parent exited or said so), then tear down
set -u
: "${NODE_DIR:?}" "${NODE_NAME:?}" "${NODE_BRIDGE:?}" "${NODE_SUBNET:?}" "${NODE_TUNABLES:?}"
# Processes are matched by NODE_DIR in their command line: refuse anything but a deep absolute path.
case "$NODE_DIR" in
  /*/*/*) ;;
  *) echo "node-teardown: NODE_DIR must be an absolute path at least three levels deep, got '$NODE_DIR'" >&2; exit 2 ;;
esac
case "$NODE_NAME" in
  sluice-node-*) ;;
  *) echo "node-teardown: NODE_NAME must start with sluice-node-, got '$NODE_NAME'" >&2; exit 2 ;;
esac

if [ "${1:-}" = "--reaper" ]; then
  # The parent's death closes the pipe; so does its normal stop. Signals are ignored so that a
  # group kill of the parent does not stop the clean-up.
  trap '' TERM INT HUP
  while read -r _; do :; done
fi

# Processes of this node: containerd, its shims, the kubelet, the scheduler and controller (their
# command lines name NODE_DIR), and every process in the node's cgroups (the containers).
node_pids() {
  local p cmdline
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = "$$" ] && continue
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
    case "$cmdline" in *"$NODE_DIR/"*) echo "$p" ;; esac
  done
  find /sys/fs/cgroup/pids/"$NODE_NAME" -name cgroup.procs -exec cat {} + 2>/dev/null
}
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  pids=$(node_pids | sort -u)
  [ -z "$pids" ] && break
  # SIGTERM first so containerd and the kubelet can stop their children, then SIGKILL.
  if [ "$attempt" -le 2 ]; then signal=TERM; else signal=KILL; fi
  for pid in $pids; do kill -s "$signal" "$pid" 2>/dev/null; done
  sleep 1
done

# Mounts under the node directory (kubelet's root, overlay root file systems, sandbox /dev/shm), deepest first.
awk -v dir="$NODE_DIR" '$5 == dir || index($5, dir "/") == 1 { print $5 }' /proc/self/mountinfo | sort -ru | while read -r point; do
  umount "$point" 2>/dev/null || umount -l "$point" 2>/dev/null || echo "node-teardown: could not unmount $point" >&2
done

# Pod network namespaces (containerd 1.6 makes them in /var/run/netns) that hold an address of this node's subnet.
for ns in /var/run/netns/cni-*; do
  [ -e "$ns" ] || continue
  ns=${ns##*/}
  if ip -n "$ns" -4 -o addr 2>/dev/null | grep -qF " $NODE_SUBNET"; then
    ip netns delete "$ns" 2>/dev/null || echo "node-teardown: could not delete network namespace $ns" >&2
  fi
done

ip link delete "$NODE_BRIDGE" 2>/dev/null

# The nat chain that routes the kubernetes Service from this bridge (pod-network.ts names it so).
chain="SLUICE-$NODE_BRIDGE"
while iptables -t nat -D PREROUTING -i "$NODE_BRIDGE" -j "$chain" 2>/dev/null; do :; done
iptables -t nat -F "$chain" 2>/dev/null
iptables -t nat -X "$chain" 2>/dev/null

# The node's cgroup trees, in every hierarchy (the kubelet also mirrors them into the hybrid layout's unified one).
for root in /sys/fs/cgroup/*/"$NODE_NAME"; do
  [ -d "$root" ] || continue
  find "$root" -depth -type d -exec rmdir {} + 2>/dev/null
  [ -d "$root" ] && echo "node-teardown: could not remove cgroup $root (processes left: $(find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' '))" >&2
done

# Kernel settings the kubelet changes when it starts (vm.overcommit_memory, kernel.panic, …).
if [ -f "$NODE_TUNABLES" ]; then
  while read -r path value; do
    [ -n "$path" ] || continue
    [ "$(cat "/proc/sys/$path" 2>/dev/null)" = "$value" ] || echo "$value" >"/proc/sys/$path" 2>/dev/null ||
      echo "node-teardown: could not put back /proc/sys/$path=$value" >&2
  done <"$NODE_TUNABLES"
fi
exit 0
