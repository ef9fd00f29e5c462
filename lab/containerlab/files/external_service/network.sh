#!/bin/sh
# The external service behind the exit router (mini-lab's "internet"):
# 203.0.113.0/24 and 2001:db8:0:1::/64 on the mini_lab_ext bridge, default
# routes via the exit router (mini-lab's addressing).
set -o errexit -o xtrace

ip address add 203.0.113.100/24 dev mini_lab_ext
ip address add 2001:db8:0:1::100/64 dev mini_lab_ext
ip link set dev mini_lab_ext up
ip route add default via 203.0.113.128
ip -6 route add default via 2001:db8:0:1::1
