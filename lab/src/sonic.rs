//! Stand-in for SONiC's swss daemons (written next; see module docs in lib.rs).
