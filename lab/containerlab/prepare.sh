#!/bin/sh
# Build the package deploy.sh copies to the leaves: files/metal-switchd.deb
# (here, ignored by git), by ./dev package.
set -eu
cd "$(dirname "$0")"
mkdir -p files
deb=$(cd ../.. && ./dev package | tail -n 1)
cp "../../$deb" files/metal-switchd.deb
echo "prepared: files/metal-switchd.deb ($deb)"
