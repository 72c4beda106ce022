#!/bin/sh
# Two "hosts" for the two-host bootstrap tests: network namespaces A and B joined by a veth
# pair, A = 10.231.0.1/24, B = 10.231.0.2/24.
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
ip -n "$a" addr add 10.231.0.1/24 dev "v$a"
ip -n "$b" addr add 10.231.0.2/24 dev "v$b"
for ns in "$a" "$b"; do
    ip -n "$ns" link set lo up
done
ip -n "$a" link set "v$a" up
ip -n "$b" link set "v$b" up
