#!/bin/sh
# Usage: lab/containerlab/deploy.sh MINI_LAB_DIR [LEAF...]
#
# After `make up` in a mini-lab checkout (metal-stack/mini-lab): copy the
# package into each SONiC leaf's VM and switch it from metal-core to
# metal-switchd there (install-metal-switchd.sh). It reaches the leaves the
# way mini-lab does, as root through mini-lab's own SSH configuration
# (`ssh -F files/ssh/config leafNN`, run in the mini-lab checkout, whose
# relative IdentityFile it names), and writes nothing into the checkout.
# The package: files/metal-switchd.deb here (prepare.sh).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ] || [ ! -f "$1/files/ssh/config" ]; then
    echo "usage: $0 MINI_LAB_DIR [LEAF...]  (a mini-lab checkout after 'make up': no $1/files/ssh/config)" >&2
    exit 2
fi
minilab=$(cd "$1" && pwd)
shift
[ $# -gt 0 ] || set -- leaf01 leaf02
deb="$here/files/metal-switchd.deb"
[ -f "$deb" ] || { echo "$deb is missing: run $here/prepare.sh first" >&2; exit 2; }
cd "$minilab"
for leaf in "$@"; do
    # mini-lab's configuration logs in to the leaves as root; a version that
    # names another user for this leaf gets sudo.
    user=$(ssh -G -F files/ssh/config "$leaf" | sed -n 's/^user //p')
    sudo=""
    [ "$user" = root ] || sudo="sudo"
    echo "== $leaf (as $user)"
    scp -F files/ssh/config "$deb" "$here/install-metal-switchd.sh" "$leaf:/tmp/"
    ssh -F files/ssh/config "$leaf" $sudo sh /tmp/install-metal-switchd.sh /tmp/metal-switchd.deb
done
