//! Lab and test stand-ins for metal-switchd. Not part of the shipped agent.
//!
//! - [`redis_server`]: a throwaway `redis-server` on a unix socket in a temp
//!   dir, configured like SONiC's (keyspace notifications `AKE`, no
//!   persistence), stopped on drop.
//! - [`seed`]: load SONiC configurations (`config_db.json` in either shape,
//!   `port_config.ini` port maps) into it the way SONiC's boot does.
//! - [`sonic`]: a stand-in for SONiC's swss daemons (vrfmgrd, vlanmgrd,
//!   intfmgrd, vxlanmgrd, orchagent) that writes their STATE_DB / APPL_DB /
//!   ASIC_DB markers and reports orders that would crash or wedge them;
//!   [`sonic_kernel`] does the managers' kernel steps in a namespace.
//! - [`frr_lab`]: real `zebra` + `bgpd` + `staticd` in a network namespace
//!   with their own vty sockets, configuration directory and host name,
//!   stopped on drop.
//! - [`systemd_standin`]: a private `dbus-daemon` with a stand-in for
//!   systemd's manager (`StartUnit`, `JobRemoved`: done, failed, never).
//! - [`api_server`]: a stand-in for metal-api v1 (REST, HMAC) and
//!   metal-apiserver v2 (Connect, bearer tokens) that records every call
//!   and injects faults on request.
//! - [`pki`]: throwaway CA, server and client certificates (rcgen) for
//!   mutual TLS tests.
//! - [`netns`]: throwaway network namespaces with `ip`/`bridge` helpers and
//!   link-type probes, veth links, Debian's `lldpd` as an LLDP sender and a
//!   raw frame sender.
//! - [`vm`]: run test binaries under Debian's full kernel in a qemu VM
//!   (host root over 9p), for what this machine's kernel cannot do.
//! - [`minilab`]: the netns mini-lab (two leaves running `metal-switchd
//!   run`, FRR BGP to an exit router, machines, one lab API server), its
//!   scenario and status tables; `demo` and `lab up | status | down`.
//! - [`fixtures`]: the repository's test data, embedded.
//! - [`switch_redis`]: a switch-sized redis (APPL_DB routes, ASIC_DB SAI
//!   objects, COUNTERS_DB port counters in SONiC's own shapes).
//! - [`slowlog`]: redis' `SLOWLOG` read back and attributed to clients by
//!   name (the agent's slowest command and transaction).
//! - [`flavours`]: what a leaf of each SONiC flavour presents (base
//!   configuration, routing config mode, zebra modules, the start script's
//!   lines) and the stand-in's FRR-side check of an installed frr.conf.
//! - [`generate`]: generated switch states and port maps of any size.
//! - [`demo`], [`measure`], [`bench`], [`fleet`]: the `metal-switchd-lab`
//!   sub-commands (demo, round-trip measurement, apply benchmark and
//!   performance report, N agents against one lab API server).

pub mod api_server;
pub mod bench;
pub mod demo;
pub mod fixtures;
pub mod flavours;
pub mod fleet;
pub mod frr_lab;
pub mod generate;
pub mod measure;
pub mod minilab;
pub mod netns;
pub mod pki;
pub mod redis_server;
pub mod seed;
pub mod slowlog;
pub mod sonic;
pub mod sonic_kernel;
pub mod switch_redis;
pub mod systemd_standin;
pub mod vm;
