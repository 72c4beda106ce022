#!/bin/sh
# Two "hosts" for the two-host bootstrap tests: network namespaces A and B joined by a veth
# pair whose ends are both called mnnvl0, A = 10.231.0.1/24, B = 10.231.0.2/24.
#   netns.sh up A B     creates them (exit status non-zero when this machine cannot)
#   netns.sh down A B   removes them (ignores what is already gone)
set -u
cmd=$1 a=$2 b=$3
if [ "$cmd" = down ]; then
    ip netns del "$a" 2>/dev/null
    ip netns del "$b" 2>/dev/null
    exit 0
fi
set -e
ip netns add "$a"
ip netns add "$b"
ip link add "v$a" netns "$a" type veth peer name "v$b" netns "$b"
ip -n "$a" link set "v$a" name mnnvl0
ip -n "$b" link set "v$b" name mnnvl0
ip -n "$a" addr add 10.231.0.1/24 dev mnnvl0
ip -n "$b" addr add 10.231.0.2/24 dev mnnvl0
for ns in "$a" "$b"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set mnnvl0 up
done
# The link reports "up" a moment after both ends are: wait for it (UCX skips a down device).
for i in $(seq 50); do
    if [ "$(ip netns exec "$a" cat /sys/class/net/mnnvl0/operstate)" = up ] &&
       [ "$(ip netns exec "$b" cat /sys/class/net/mnnvl0/operstate)" = up ]; then
        exit 0
    fi
    sleep 0.1
done
echo "netns.sh: the veth link between $a and $b did not come up" >&2
exit 1
