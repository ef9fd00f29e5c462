#!/bin/sh
# Runs on a SONiC leaf (as root): replaces metal-core with metal-switchd
# the way README.md's "Upgrade from metal-core" describes, keeping
# metal-core's settings (its METAL_CORE_* environment) so the agent talks to
# the mini-lab's metal API exactly as metal-core did.
set -eu
deb=${1:-/tmp/metal-switchd.deb}
if docker inspect metal-core.service >/dev/null 2>&1; then
    docker inspect metal-core.service \
        --format '{{range .Config.Env}}{{println .}}{{end}}' \
        | grep '^METAL_CORE_' > /etc/default/metal-core
    chmod 600 /etc/default/metal-core
fi
dpkg -i "$deb"
systemd-run --pipe --wait -p EnvironmentFile=/etc/default/metal-core metal-switchd check-config
systemctl disable --now metal-core || true
systemctl enable --now metal-switchd
systemctl --no-pager status metal-switchd
