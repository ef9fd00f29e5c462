#!/bin/sh
# Make the files the topology binds that are not in the repository:
#   files/ssh/id_ed25519{,.pub}   the key the leaves' admin user accepts
#   files/metal-switchd.deb       the Debian package (./dev package)
set -eu
cd "$(dirname "$0")"
mkdir -p files/ssh
[ -f files/ssh/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -C mini-lab -f files/ssh/id_ed25519
deb=$(cd ../.. && ./dev package | tail -n 1)
cp "../../$deb" files/metal-switchd.deb
echo "prepared: files/ssh/id_ed25519.pub, files/metal-switchd.deb ($deb)"
