//! Lab and test stand-ins for metal-switchd. Not part of the shipped agent.
//!
//! - [`redis_server`]: a throwaway `redis-server` on a unix socket in a temp
//!   dir, configured like SONiC's (keyspace notifications `AKE`, no
//!   persistence), stopped on drop.
//! - [`seed`]: load SONiC configurations (`config_db.json` in either shape,
//!   `port_config.ini` port maps) into it the way SONiC's boot does.
//! - [`sonic`]: a stand-in for SONiC's swss daemons (vrfmgrd, vlanmgrd,
//!   intfmgrd, vxlanmgrd, orchagent) that writes their STATE_DB / APPL_DB /
//!   ASIC_DB markers and reports orders that would crash or wedge them.
//! - [`api_server`]: a stand-in for metal-api v1 (REST, HMAC) and
//!   metal-apiserver v2 (Connect, bearer tokens) that records every call
//!   and injects faults on request.
//! - [`fixtures`]: the repository's test data, embedded.

pub mod api_server;
pub mod fixtures;
pub mod redis_server;
pub mod seed;
pub mod sonic;
