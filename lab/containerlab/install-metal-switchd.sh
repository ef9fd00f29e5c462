#!/bin/sh
# Runs on a SONiC leaf as root (deploy.sh copies it there): replaces
# metal-core with metal-switchd the way README.md's "Upgrade from
# metal-core" describes, with metal-core's settings (the METAL_CORE_*
# environment of the container metal-roles runs as metal-core.service).
#   1. metal-core's environment into /etc/default/metal-core (mode 0600:
#      it holds the HMAC key), unless it is there already;
#   2. dpkg -i: the package leaves a running metal-core alone;
#   3. metal-switchd migrate: checks, stops and disables metal-core.service
#      (systemd, as metal-roles runs it), starts the agent and waits until it
#      converged; metal-core is started again if it does not.
set -eu
deb=${1:-/tmp/metal-switchd.deb}
env_file=${METAL_CORE_ENV_FILE:-/etc/default/metal-core}
if [ ! -s "$env_file" ]; then
    umask 077
    docker inspect metal-core.service \
        --format '{{range .Config.Env}}{{println .}}{{end}}' \
        | grep '^METAL_CORE_' > "$env_file.new"
    mv "$env_file.new" "$env_file"
fi
dpkg -i "$deb"
metal-switchd migrate
