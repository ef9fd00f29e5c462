//! The error and warning lines of real SONiC's daemons the tests accept,
//! each with why (`tests/minilab_sonic.rs`, `tests/soak_sonic.rs`).

/// Error and warning lines of SONiC's daemons that are not the agent's
/// doing, matched as substrings, each with why. The first group appears
/// without the agent: `metal-switchd-lab sonic-baseline --release 202411
/// --linger-secs 600` in the VM (SONiC alone on leaf01's seeded
/// configuration for ten minutes) logged exactly these.
pub const NOT_THE_AGENTS: &[(&str, &str)] = &[
    (
        "logSet: virtual sai_status_t saivs::Sai::logSet",
        "baseline: syncd sets SAI log levels before the virtual SAI is initialised",
    ),
    (
        "RouteOrch: Failed to get switch attribute max ECMP Group size",
        "baseline: the virtual SAI does not implement the attribute",
    ),
    (
        "initBufferConstants: Failed to get Maximum memory size",
        "baseline: the virtual SAI does not implement the attribute",
    ),
    (
        "MirrorOrch: Failed to get switch attribute number of traffic classes",
        "baseline: the virtual SAI does not implement the attribute",
    ),
    (
        "queryAclActionAttrEnumValues: Failed to query enum values",
        "baseline: the virtual SAI does not implement the capability query",
    ),
    (
        "bindAclTable: Port list is empty for DTEL_FLOW_WATCHLIST table",
        "baseline: orchagent's default ACL tables on a switch without DTel",
    ),
    (
        "parsePbhAsicVendor: Failed to detect ASIC vendor",
        "baseline: no ASIC_VENDOR in the environment of the virtual switch",
    ),
    (
        "PbhCapabilities: Failed to parse ASIC vendor",
        "baseline: follows from the line before",
    ),
    (
        "isAutoNegEnabled: Failed to get port AutoNeg status",
        "baseline: the virtual SAI does not implement the attribute",
    ),
    (
        "getPortSupportedSpeeds: Unable to validate speed for port",
        "baseline: the virtual SAI reports no supported speeds",
    ),
    (
        "initializePort: Failed to get host_tx_ready value from SAI",
        "202311, once per port while orchagent initialises the ports (before PortInitDone, \
         so before the lab starts the agent): the virtual SAI's metadata says it can notify \
         host-tx-ready, but it does not implement SAI_PORT_ATTR_HOST_TX_READY_STATUS \
         (portsorch.cpp initializePort, getPortHostTxReady)",
    ),
    // Not in the baseline, but from the virtual SAI's gaps that any
    // configuration reaches.
    (
        "Could not retreive PFC frame count",
        "the virtual SAI has no PFC counters; orchagent's counter check polls them every \
         5 minutes once a port's queue counters exist",
    ),
    // SONiC's own race between a MAC learned and a bridge port removed.
    (
        "meta_fdb_event_snoop_oid: fdb_entry oid (snoop): SAI_OBJECT_TYPE_BRIDGE_PORT",
        "a port leaving a VLAN while its machine sends: syncd reported an FDB event (a MAC learned) on the \
         port's bridge port before orchagent removed it (admin down, flush, remove: \
         portsorch.cpp removeBridgePort), orchagent reads the notification after the removal \
         and its sairedis client no longer knows the object; seen in one of two runs; no order \
         of CONFIG_DB writes avoids it",
    ),
    (
        "Failed to get port by bridge port ID",
        "the same notification in FdbOrch::update (fdborch.cpp), which logs it as ERROR for \
         every FDB event but a flush",
    ),
    // SONiC's own order between two managers.
    (
        "Vxlan tunnel map vlan id doesn't exist",
        "vlanmgrd writes APPL_DB VLAN_TABLE, then STATE_DB VLAN_TABLE (vlanmgr.cpp); vxlanmgrd \
         writes a VLAN's VNI map to APPL_DB only once STATE_DB has the VLAN (vxlanmgr.cpp \
         isVlanStateOk), so the VLAN is in APPL_DB first, but orchagent may take the map in a \
         loop before the VLAN and retries it (vxlanorch.cpp VxlanTunnelMapOrch::addOperation); \
         seen in the soak on real SONiC when a VLAN and its map are created together",
    ),
    // SONiC's own order within one CONFIG_DB entry.
    (
        "hasn't been created yet",
        "vrfmgrd writes APPL_DB VRF_TABLE and VXLAN_VRF_TABLE for one VRF entry with a vni; \
         orchagent may take the VNI map first and retries it on its next loop \
         (vxlanorch.cpp VxlanVrfMapOrch::addOperation), whoever writes the VRF",
    ),
];

/// Lines that are the agent's doing and kept on purpose, each with why
/// (docs/sonic.md, "Open").
pub const THE_AGENTS_KEPT: &[(&str, &str)] = &[(
    "Logic error: Unknown attribute: fallback",
    "the agent writes VRF fallback=false as metal-core does; the community VRFOrch (202311 to 202505) parses the \
     field but does not act on it and logs this at every VRF it creates (the VRF is created \
     all the same)",
)];

/// Why `line` (a daemon's error or warning) is accepted, or `None`.
pub fn explained(line: &str) -> Option<&'static str> {
    NOT_THE_AGENTS
        .iter()
        .chain(THE_AGENTS_KEPT)
        .find(|(p, _)| line.contains(p))
        .map(|(_, why)| *why)
}
