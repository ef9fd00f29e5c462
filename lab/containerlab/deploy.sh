#!/bin/sh
# After `containerlab deploy` and metal-roles' leaf setup: copy the package
# to each SONiC leaf and replace metal-core with metal-switchd there.
set -eu
cd "$(dirname "$0")"
ssh_opts="-i files/ssh/id_ed25519 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
for leaf in ${LEAVES:-leaf01 leaf02}; do
    echo "== $leaf"
    # shellcheck disable=SC2086
    scp $ssh_opts files/metal-switchd.deb install-metal-switchd.sh "admin@$leaf:/tmp/"
    # shellcheck disable=SC2086
    ssh $ssh_opts "admin@$leaf" sudo sh /tmp/install-metal-switchd.sh /tmp/metal-switchd.deb
done
