#!/bin/bash
# Build one SONiC release's switch-state daemons and its FRR from the vendored
# source archives, into a cache outside the work tree (docs/sonic.md):
#
#   /var/cache/metal-switchd/sonic/<release>-<key>/
#     bin/     syncd orchagent portsyncd portmgrd vlanmgrd vrfmgrd intfmgrd
#              vxlanmgrd nbrmgrd fpmsyncd neighsyncd swssloglevel
#     lib/     libswsscommon, libsairedis, libsaivs, libsaimeta(data), libdashapi
#     share/swss/   the Lua scripts libswsscommon and orchagent load
#     frr/     zebra (+ fpm modules), bgpd, staticd, mgmtd (10.x), vtysh,
#              frr-reload.py, and the libyang 2 they link
#     database_config.json   the release's own, as template
#     BUILD-INFO             release, key, versions and build time
#
# <key> is the first 16 hex digits of a sha256 over the archives' checksums,
# the patches in lab/sonic/patches/<release>/ and RECIPE below (raise it when
# a change of this script changes what is built): the same inputs give the
# same directory, and a finished one (BUILD-INFO present) is reused in
# seconds.
# Usage: build.sh RELEASE          build unless cached; prints the directory
#        build.sh --check RELEASE  print the directory if built, else exit 1
# Env: DEV_SONIC_VENDOR (default <repo>/../shared/vendor),
#      SONIC_CACHE (default /var/cache/metal-switchd/sonic), JOBS (default 2),
#      SONIC_SKIP_APT=1 (do not install build dependencies).
set -euo pipefail

RECIPE=1
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
release=${1:-202411}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
vendor=${DEV_SONIC_VENDOR:-$repo/../shared/vendor}
cache=${SONIC_CACHE:-/var/cache/metal-switchd/sonic}
jobs=${JOBS:-2}
# -O1 -g0: about 40 % less compile time than upstream's -g -O2 and a tenth of
# the build tree; the daemons are exercised, not debugged, here.
# -Wno-error=format: each release has printf-format mismatches in code the
# tests do not reach (202411 orchagent intfsorch.cpp passes a 64-bit object
# id to %d; 202311/202505 syncd passes size_t to %d through swss' log macros).
optflags="-O1 -g0"
cxxflags="$optflags -Wno-error=format"

case "$release" in
    202311) frr=8.5.1; debian=11 ;;
    202411) frr=10.0.1; debian=12 ;;
    202505) frr=10.3; debian=12 ;;
    *) echo "error: unknown SONiC release '$release' (known: 202311 202411 202505)" >&2; exit 2 ;;
esac

archives=""
for a in sonic-swss-common sonic-sairedis sonic-swss sonic-dash-api SAI; do
    archives="$archives $vendor/sonic/$a-$release.tar.xz"
done
archives="$archives $vendor/frr/frr-$frr.tar.xz $vendor/frr/libyang-2.1.128.tar.xz"
[ "$release" = 202311 ] && archives="$archives $vendor/frr/libyang-1.0.240.tar.xz"
for a in $archives; do
    [ -r "$a" ] || { echo "error: $a missing (set DEV_SONIC_VENDOR to the vendored sources)" >&2; exit 1; }
done

patches="$here/patches/$release"
key=$( {
    sha256sum $archives | awk '{print $1}'
    echo "recipe $RECIPE"
    if [ -d "$patches" ]; then (cd "$patches" && find . -type f -name '*.patch' | LC_ALL=C sort | xargs -r sha256sum); fi
} | sha256sum | cut -c1-16)
out="$cache/$release-$key"

# neighsyncd: SONiC's copy of the kernel's neighbours into APPL_DB
# NEIGH_TABLE (orchagent programs a route only once its next hop is there).
# Three source files, compiled directly against swss-common's headers from
# the archive and the build's own libswsscommon: a finished cache made
# before neighsyncd joined the build gets it in seconds, instead of every
# release being rebuilt under a new RECIPE.
add_neighsyncd() {   # $1 = the build directory
    [ -x "$1/bin/neighsyncd" ] && return 0
    local tmp s t=$(date +%s)
    tmp=$(mktemp -d)
    tar -xJf "$vendor/sonic/sonic-swss-common-$release.tar.xz" -C "$tmp" sonic-swss-common/common
    tar -xJf "$vendor/sonic/sonic-swss-$release.tar.xz" -C "$tmp" sonic-swss/neighsyncd sonic-swss/warmrestart
    s="$tmp/sonic-swss"
    # shellcheck disable=SC2086
    if ! g++ -std=c++14 $cxxflags -I"$s" -I"$s/warmrestart" -I"$tmp/sonic-swss-common/common" \
        -I/usr/include/libnl3 "$s/neighsyncd/neighsyncd.cpp" "$s/neighsyncd/neighsync.cpp" \
        "$s/warmrestart/warmRestartAssist.cpp" -L"$1/lib" -Wl,-rpath,"$1/lib" \
        -lswsscommon -lhiredis -lnl-3 -lnl-route-3 -lpthread -o "$1/bin/neighsyncd.tmp" 2>"$tmp/log"; then
        echo "error: building neighsyncd for SONiC $release failed:" >&2
        tail -n 30 "$tmp/log" >&2
        rm -rf "$tmp" "$1/bin/neighsyncd.tmp"
        exit 1
    fi
    strip --strip-unneeded "$1/bin/neighsyncd.tmp" 2>/dev/null || true
    mv "$1/bin/neighsyncd.tmp" "$1/bin/neighsyncd"
    rm -rf "$tmp"
    echo "SONiC $release: neighsyncd built into $1/bin ($(( $(date +%s) - t )) s)" >&2
}

if [ -f "$out/BUILD-INFO" ]; then
    if [ $check = 1 ] && [ ! -x "$out/bin/neighsyncd" ]; then
        echo "SONiC $release in $out lacks neighsyncd (build.sh $release adds it)" >&2
        exit 1
    fi
    [ $check = 1 ] || { echo "SONiC $release: cached in $out" >&2; add_neighsyncd "$out"; }
    echo "$out"
    exit 0
fi
if [ $check = 1 ]; then
    echo "SONiC $release is not built for these sources (no $out)" >&2
    exit 1
fi

# Build dependencies (Debian 12); SONIC_SKIP_APT=1 when they are in place.
BUILD_PACKAGES="build-essential autoconf automake autoconf-archive libtool pkg-config
  libhiredis-dev libnl-3-dev libnl-genl-3-dev libnl-route-3-dev libnl-nf-3-dev
  libzmq3-dev libboost-dev libboost-serialization-dev nlohmann-json3-dev uuid-dev
  python3-dev doxygen graphviz aspell aspell-en libxml-simple-perl libjansson-dev
  protobuf-compiler libprotobuf-dev libjemalloc-dev protobuf-c-compiler libprotobuf-c-dev
  cmake libpcre2-dev libpcre3-dev bison flex libreadline-dev libjson-c-dev libc-ares-dev
  libcap-dev libelf-dev redis-server redis-tools iproute2 python3"
if [ "${SONIC_SKIP_APT:-0}" != 1 ]; then
    missing=""
    for p in $BUILD_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "installing build dependencies:$missing" >&2
        # A shared machine may be installing something else: wait for
        # dpkg's lock (up to 10 min) instead of failing at once.
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
            --no-install-recommends $missing >/dev/null
    fi
fi

work="$cache/build-$release-$key"
# Built in place (libtool records the install directory in each binary);
# BUILD-INFO, written last, marks a finished build. A build that stopped
# half-way resumes after its last finished part (stamps in $work/done/).
resumed=no
if [ -d "$work/done" ] && [ -d "$out" ]; then
    resumed=yes
else
    rm -rf "$work" "$out"
fi
mkdir -p "$work/src" "$work/done" "$out"
stage="$out"
logs="$work/logs"
mkdir -p "$logs"
t0=$(date +%s)
finished() { [ -e "$work/done/$1" ]; }
# Each finished part's wall time goes into BUILD-INFO (part_<name>_seconds).
t_part=$t0
mark() {
    touch "$work/done/$1"
    case "$1" in patch-*) ;; *) echo "part_$1_seconds=$(( $(date +%s) - t_part ))" >> "$work/times" ;; esac
    t_part=$(date +%s)
}
step() { echo "[$(( $(date +%s) - t0 ))s] SONiC $release: $*" >&2; }
# Each step's output goes to its log; on failure the log's tail is shown.
run() {
    local log=$1; shift
    if ! "$@" >>"$logs/$log.log" 2>&1; then
        echo "error: SONiC $release build step failed: $*" >&2
        tail -n 40 "$logs/$log.log" >&2
        echo "(full log: $logs/$log.log)" >&2
        exit 1
    fi
}
apply_patches() {   # $1 = repository name, in the current directory
    [ -d "$patches" ] || return 0
    for p in "$patches/$1"--*.patch; do
        [ -e "$p" ] || continue
        finished "patch-${p##*/}" && continue
        run patches patch -p1 --forward -i "$p"
        mark "patch-${p##*/}"
    done
}
src="$work/src"
if ! finished unpack; then
    for a in sonic-swss-common sonic-sairedis sonic-swss sonic-dash-api; do
        tar xJf "$vendor/sonic/$a-$release.tar.xz" -C "$src"
    done
    tar xJf "$vendor/sonic/SAI-$release.tar.xz" -C "$src/sonic-sairedis"
    tar xJf "$vendor/frr/frr-$frr.tar.xz" -C "$src"
    tar xJf "$vendor/frr/libyang-2.1.128.tar.xz" -C "$src"
    mark unpack
fi
mkdir -p "$stage/bin" "$stage/lib" "$stage/include/swss" "$stage/include/sai" "$stage/share/swss"
make="make -j$jobs"
# Tools the builds run (SAI's metadata checker, FRR's clippy) may load the
# libraries built before them.
export LD_LIBRARY_PATH="$stage/lib:$stage/frr/lib"

ldflags="-L$stage/lib -Wl,-rpath,$out/lib"
cppflags=""
if [ "$release" = 202311 ]; then
    # swss-common 202311 compiles common/defaultvalueprovider against libyang 1
    # unconditionally; Debian 12 has only libyang 2. -isystem: with -I its
    # packed attributes fail -Werror=attributes.
    step "libyang 1"
    if ! finished libyang1; then
    rm -rf "$work/ly1"; mkdir -p "$work/ly1" && tar xJf "$vendor/frr/libyang-1.0.240.tar.xz" -C "$work/ly1"
    mkdir -p "$work/ly1/build"
    (cd "$work/ly1/build" && run libyang1 cmake ../libyang -DCMAKE_INSTALL_PREFIX="$stage" \
        -DCMAKE_INSTALL_LIBDIR=lib -DENABLE_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS="$optflags" -DCMAKE_INSTALL_RPATH="$out/lib" \
        && run libyang1 $make && run libyang1 make install)
    mark libyang1
    fi
    cppflags="-isystem $stage/include"
fi

step "swss-common"
if ! finished swsscommon; then
cd "$src/sonic-swss-common"
apply_patches sonic-swss-common
# The Lua scripts are read from a compiled-in /usr/share/swss/; the cache's
# share/swss instead (the host's /usr stays untouched).
sed -i "s|\"/usr/share/swss/\"|\"$out/share/swss/\"|" common/redisapi.h
run swss-common ./autogen.sh
# no python2 (not in Debian 12); no yang modules (they want libyang 1)
run swss-common ./configure --prefix="$stage" --disable-static --disable-python2 --disable-yangmodules \
    CFLAGS="$optflags $cppflags" CXXFLAGS="$cxxflags $cppflags" LDFLAGS="$ldflags"
run swss-common $make common/libswsscommon.la common/swssloglevel
run swss-common make install-libLTLIBRARIES install-dist_swssDATA
cp common/*.h "$stage/include/swss/"
if [ -d common/c-api ]; then mkdir -p "$stage/include/swss/c-api" && cp common/c-api/*.h "$stage/include/swss/c-api/"; fi
run swss-common ./libtool --mode=install cp common/swssloglevel "$stage/bin/"
cp common/database_config.json "$stage/database_config.json"
mark swsscommon
fi

step "sairedis (SAI metadata, libsairedis, libsaivs, syncd)"
if ! finished sairedis; then
cd "$src/sonic-sairedis"
apply_patches sonic-sairedis
run sairedis ./autogen.sh
run sairedis ./configure --prefix="$stage" --disable-static --disable-python2 --with-sai=vs \
    --with-swss-common-inc="$stage/include" --with-swss-common-lib="$stage/lib" \
    CFLAGS="$optflags $cppflags" CXXFLAGS="$cxxflags $cppflags" LDFLAGS="$ldflags"
run sairedis $make -C meta
run sairedis $make -C lib libsairedis.la
run sairedis $make -C vslib libsaivs.la
run sairedis $make -C syncd syncd syncd_request_shutdown
for d in meta lib vslib syncd; do run sairedis make -C $d install-libLTLIBRARIES; done
cp meta/sai*.h meta/Sai*.h meta/Meta.h meta/AttrKeyMap.h meta/MetaKeyHasher.h meta/OidRefCounter.h \
   meta/PortRelatedSet.h meta/Notification*.h meta/Globals.h SAI/meta/sai*.h lib/sairedis.h \
   SAI/inc/sai*.h SAI/experimental/sai*.h vslib/saivs.h "$stage/include/sai/"
for b in syncd syncd_request_shutdown; do run sairedis ./libtool --mode=install cp syncd/$b "$stage/bin/"; done
mark sairedis
fi

step "dash-api"
if ! finished dashapi; then
cd "$src/sonic-dash-api"
run dash-api $make compile_cpp_proto dashapi.so
mkdir -p "$stage/include/dash_api"
cp build/*.pb.h misc/*.h "$stage/include/dash_api/"
cp build/libdashapi.so "$stage/lib/"
mark dashapi
fi

step "swss (config managers, portsyncd, fpmsyncd, orchagent)"
if ! finished swss; then
cd "$src/sonic-swss"
apply_patches sonic-swss
run swss ./autogen.sh
run swss ./configure --prefix="$stage" --with-extra-inc="$stage/include" --with-extra-lib="$stage/lib" \
    CFLAGS="$optflags $cppflags" CXXFLAGS="$cxxflags $cppflags" LDFLAGS="$ldflags"
run swss $make -C cfgmgr vlanmgrd vrfmgrd intfmgrd vxlanmgrd portmgrd nbrmgrd
run swss $make -C portsyncd portsyncd
run swss $make -C fpmsyncd fpmsyncd
run swss $make -C orchagent orchagent
run swss make -C orchagent install-dist_swssDATA
cp cfgmgr/vlanmgrd cfgmgr/vrfmgrd cfgmgr/intfmgrd cfgmgr/vxlanmgrd cfgmgr/portmgrd cfgmgr/nbrmgrd \
   portsyncd/portsyncd fpmsyncd/fpmsyncd orchagent/orchagent "$stage/bin/"
mark swss
fi

step "libyang 2.1.128 (FRR >= 9.1 needs it; Debian 12 has 2.1.30)"
if ! finished libyang2; then
mkdir -p "$src/libyang/build"
cd "$src/libyang/build"
run libyang cmake .. -DCMAKE_INSTALL_PREFIX="$stage/frr" -DCMAKE_INSTALL_LIBDIR=lib \
    -DENABLE_LYD_PRIV=ON -DENABLE_TESTS=OFF -DENABLE_VALGRIND_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="$optflags" -DCMAKE_INSTALL_RPATH="$out/frr/lib"
run libyang $make
run libyang make install
mark libyang2
fi

step "FRR $frr (zebra + fpm modules, bgpd, staticd, vtysh)"
if ! finished frr; then
cd "$src/frr"
apply_patches frr
# The vendored archive leaves the topotests out; Makefile.am still includes
# their automake fragment.
[ -e tests/topotests/subdir.am ] || { mkdir -p tests/topotests && : > tests/topotests/subdir.am; }
run frr ./bootstrap.sh
# Only what a leaf runs; paths compiled in: /etc/frr (vtysh.conf, frr.conf;
# the lab passes its own), /var/run/frr (the lab passes --vty_socket).
run frr ./configure --prefix="$out/frr" --sysconfdir=/etc/frr --localstatedir=/var/run/frr \
    --with-moduledir="$out/frr/lib/frr/modules" \
    --enable-user=frr --enable-group=frr --enable-vty-group=frrvty \
    --enable-fpm --enable-multipath=64 \
    --disable-doc --disable-ripd --disable-ripngd --disable-ospfd --disable-ospf6d \
    --disable-ldpd --disable-nhrpd --disable-eigrpd --disable-babeld --disable-isisd \
    --disable-pimd --disable-pim6d --disable-pbrd --disable-fabricd --disable-vrrpd \
    --disable-bfdd --disable-sharpd --disable-pathd --disable-snmp --disable-rpki \
    --disable-scripting --disable-grpc --disable-zeromq --disable-config-rollbacks \
    --disable-bgp-bmp --disable-protobuf \
    PKG_CONFIG_PATH="$stage/frr/lib/pkgconfig" \
    CFLAGS="$optflags -I$stage/frr/include" LDFLAGS="-L$stage/frr/lib -Wl,-rpath,$out/frr/lib"
run frr $make
run frr make install
mark frr
fi

step "neighsyncd"
add_neighsyncd "$out"
mark neighsyncd

rm -rf "$stage/include" "$stage/frr/include" "$stage/frr/share/man"
find "$stage" \( -name '*.la' -o -name '*.a' \) -delete
for f in "$stage"/bin/* "$stage"/lib/*.so* "$stage"/frr/sbin/* "$stage"/frr/bin/* "$stage"/frr/lib/*.so* "$stage"/frr/lib/frr/modules/*.so; do
    [ -f "$f" ] && [ ! -L "$f" ] && strip --strip-unneeded "$f" 2>/dev/null || true
done
secs=$(( $(date +%s) - t0 ))
{
    echo "release=$release"
    echo "key=$key"
    echo "debian_base=$debian"
    echo "frr=$frr"
    echo "build_seconds=$secs"
    echo "resumed=$resumed"
    echo "optflags=$optflags"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    cat "$work/times" 2>/dev/null || true
    sha256sum $archives | sed 's|  .*/|  |'
} > "$stage/BUILD-INFO.tmp"
mv "$stage/BUILD-INFO.tmp" "$stage/BUILD-INFO"
rm -rf "$work"
step "built in ${secs}s into $out"
echo "$out"
