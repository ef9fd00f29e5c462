//! What SONiC confirms, per owned CONFIG_DB table: the one catalogue (pure).
//!
//! When a SONiC daemon has processed a CONFIG_DB entry it writes a *marker*
//! into STATE_DB or APPL_DB, and removes it once it processed the entry's
//! deletion (sonic-configdb reference §4). [`CATALOGUE`] says, for every
//! table the agent writes, which marker that is, who writes it, which field
//! the daemon copies from the entry (and how it treats an in-place change of
//! that field), which special confirmation it needs beyond the marker, which
//! object marker of a later daemon a deletion waits for as well, and which
//! CONFIG_DB key a marker of a given name stands for. Everything that needs
//! to know what SONiC confirms reads this table:
//!
//! - planning ([`super::plan`]): the barrier after a phase, per change;
//! - assessment ([`super::confirmed::assess`]): what SONiC still owes for the
//!   CONFIG_DB it holds, and which entries it provably dropped;
//! - the feed ([`super::feed`]): which STATE_DB and APPL_DB tables it
//!   subscribes to ([`watched`]).
//!
//! A new marker (a flavour whose daemons confirm a table the community
//! release does not) is one entry here.
//!
//! A deletion can need more than its daemon's marker gone: orchagent keeps
//! its VRF object (`STATE_DB VRF_OBJECT_TABLE`) after vrfmgrd removed its
//! marker, as long as something holds it — the VLAN-VNI map of the VRF's
//! VNI among them. That is the VRF entry's [`Confirmation::object`]: the
//! planner's barrier after a VRF's deletion waits for it (the VXLAN map of
//! the VNI goes only then, see [`super::plan`]), assessment counts it as a
//! pending deletion while it stays, and the feed watches its table.
//!
//! Two confirmations are not a marker of their own and are listed as
//! [`Special`] cases of the entries that need them: router interfaces
//! (orchagent's `COUNTERS_RIF_NAME_MAP`, read field by field) and ASIC
//! bridge ports (found through the port's OID in `COUNTERS_PORT_NAME_MAP`).
//!
//! [`Db`], [`Check`] and [`Condition`] are the vocabulary of a barrier: a
//! condition on one database entry that SONiC makes true.

use std::fmt;

use serde::Serialize;

use super::schema::{Fields, Key, SEP, Table, vid_of_vlan_name};
use crate::spec::{SwitchSpec, vni_of_vrf_name};

/// A database a barrier looks into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Db {
    #[serde(rename = "APPL_DB")]
    Appl,
    #[serde(rename = "ASIC_DB")]
    Asic,
    #[serde(rename = "COUNTERS_DB")]
    Counters,
    #[serde(rename = "STATE_DB")]
    State,
}

impl Db {
    pub fn name(self) -> &'static str {
        match self {
            Db::Appl => "APPL_DB",
            Db::Asic => "ASIC_DB",
            Db::Counters => "COUNTERS_DB",
            Db::State => "STATE_DB",
        }
    }

    /// SONiC's default separator of the database (the applier uses the one
    /// from database_config.json).
    pub fn default_separator(self) -> char {
        match self {
            Db::State => '|',
            Db::Appl | Db::Asic | Db::Counters => ':',
        }
    }
}

/// What a barrier checks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Check {
    /// The key exists.
    Present,
    /// The key does not exist.
    Gone,
    /// A field has a value.
    FieldIs { field: String, value: String },
    /// A field of a single hash is absent (e.g. `COUNTERS_RIF_NAME_MAP`).
    FieldGone { field: String },
    /// No ASIC bridge port points at the port's OID (checked only where
    /// `COUNTERS_PORT_NAME_MAP` knows the port).
    NoBridgePort,
}

/// One barrier condition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Condition {
    pub db: Db,
    /// Table, or the full key of a single hash.
    pub table: &'static str,
    /// The key after the table, parts joined with `|` (empty for a single
    /// hash; the port for [`Check::NoBridgePort`]).
    pub name: String,
    #[serde(flatten)]
    pub check: Check,
    /// Who makes it true, for messages (e.g. `vlanmgrd`).
    pub by: &'static str,
}

impl Condition {
    pub(crate) fn new(
        db: Db,
        table: &'static str,
        name: &str,
        check: Check,
        by: &'static str,
    ) -> Self {
        Condition {
            db,
            table,
            name: name.to_owned(),
            check,
            by,
        }
    }

    /// The key after the table with the given separator.
    pub fn name_with(&self, sep: char) -> String {
        if sep == SEP {
            self.name.clone()
        } else {
            self.name.replace(SEP, &sep.to_string())
        }
    }

    /// The redis key with the given separator.
    pub fn redis_key(&self, sep: char) -> String {
        if self.name.is_empty() {
            return self.table.to_owned();
        }
        format!("{}{sep}{}", self.table, self.name_with(sep))
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.redis_key(self.db.default_separator());
        match &self.check {
            Check::Present => write!(f, "{} {key} present", self.db.name()),
            Check::Gone => write!(f, "{} {key} gone", self.db.name()),
            Check::FieldIs { field, value } => {
                write!(f, "{} {key} {field}={value:?}", self.db.name())
            }
            Check::FieldGone { field } => write!(f, "{} {key}[{field}] gone", self.db.name()),
            Check::NoBridgePort => {
                write!(f, "ASIC_DB has no bridge port for {}", self.name)
            }
        }?;
        write!(f, " ({})", self.by)
    }
}

/// COUNTERS_DB hash: interface name → router interface OID.
pub const RIF_NAME_MAP: &str = "COUNTERS_RIF_NAME_MAP";
/// COUNTERS_DB hash: port name → port OID.
pub const PORT_NAME_MAP: &str = "COUNTERS_PORT_NAME_MAP";
/// ASIC_DB bridge port table (between `ASIC_STATE` and the OID).
pub const BRIDGE_PORT_TYPE: &str = "SAI_OBJECT_TYPE_BRIDGE_PORT";
/// The bridge port's field naming the port OID it bridges.
pub const BRIDGE_PORT_FIELD: &str = "SAI_BRIDGE_PORT_ATTR_PORT_ID";

/// An entry a SONiC daemon writes once it processed a CONFIG_DB entry of
/// the same name (parts joined with `|`), and removes once it processed the
/// entry's deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub db: Db,
    pub table: &'static str,
    /// Who writes it, for messages.
    pub by: &'static str,
}

impl Marker {
    pub fn present(&self, name: &str) -> Condition {
        Condition::new(self.db, self.table, name, Check::Present, self.by)
    }

    pub fn gone(&self, name: &str) -> Condition {
        Condition::new(self.db, self.table, name, Check::Gone, self.by)
    }

    pub fn field_is(&self, name: &str, field: &str, value: &str) -> Condition {
        let check = Check::FieldIs {
            field: field.to_owned(),
            value: value.to_owned(),
        };
        Condition::new(self.db, self.table, name, check, self.by)
    }
}

/// How a daemon treats an in-place change of a field it copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InPlace {
    /// A number (absent or unreadable: 0), changed in place only from or to
    /// 0: vrfmgrd rejects a VRF's VNI changed directly, so a difference
    /// between two non-zero values replaces the entry (the VNI via 0).
    ThroughZero,
    /// A name (absent: empty), never changed in place: intfmgrd skips a
    /// `vrf_name` rewritten in place ("can not change to … directly"), so
    /// any difference replaces the entry (delete → confirm → create).
    Never,
}

impl InPlace {
    /// The value of `field` in `fields` as the daemon reads it.
    fn value(self, fields: &Fields, field: &str) -> String {
        let raw = fields.get(field).map(String::as_str);
        match self {
            InPlace::ThroughZero => raw
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
                .to_string(),
            InPlace::Never => raw.unwrap_or("").to_owned(),
        }
    }

    /// What a marker without the field (or without the entry) says.
    fn absent(self) -> Option<&'static str> {
        match self {
            InPlace::ThroughZero => Some("0"),
            InPlace::Never => None,
        }
    }

    /// Whether the marker's `seen` can never become `wanted` in place.
    fn must_replace(self, wanted: &str, seen: &str) -> bool {
        match self {
            InPlace::ThroughZero => wanted != "0" && seen != "0",
            InPlace::Never => true,
        }
    }
}

/// A field a daemon copies from the CONFIG_DB entry into a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mirror {
    /// Where the copy lives. When it is the entry's own marker, the copy
    /// also stands for the marker's presence.
    pub marker: Marker,
    pub config_field: &'static str,
    pub marker_field: &'static str,
    pub in_place: InPlace,
    /// A planned update that sets `config_field` waits for the copy.
    pub on_update: bool,
}

/// A confirmation beyond the marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// orchagent creates a router interface for the entry (a field of
    /// [`RIF_NAME_MAP`], read alone): its deletion is confirmed only when
    /// the field is gone.
    RouterInterface,
    /// orchagent creates an ASIC bridge port for the member's port (found
    /// through the port's OID in [`PORT_NAME_MAP`]): a port leaving its VLAN
    /// to be routed waits until no bridge port points at it.
    BridgePort,
}

/// What SONiC confirms for one CONFIG_DB table.
#[derive(Debug, Clone, Copy)]
pub struct Confirmation {
    pub table: Table,
    pub marker: Marker,
    pub mirror: Option<Mirror>,
    pub special: Option<Special>,
    /// The marker of the object a later daemon (orchagent) made for the
    /// entry, removed only after [`Confirmation::marker`] and once nothing
    /// holds the object any more: a deletion is confirmed only when it is
    /// gone too. Its coming is not waited for (the marker says the entry
    /// was taken).
    pub object: Option<Marker>,
    /// The owned CONFIG_DB key a marker (or router interface) of this name
    /// stands for, when the name lies in the agent's domain (its deletion is
    /// then confirmed by the marker going).
    pub claims: fn(&Domain<'_>, &str) -> Option<Key>,
}

const VRFMGRD_STATE: Marker = Marker {
    db: Db::State,
    table: "VRF_TABLE",
    by: "vrfmgrd",
};
/// orchagent's VRF object: removed after vrfmgrd's marker, and only once
/// nothing holds the VRF — the VLAN-VNI map of its VNI included, which
/// orchagent keeps out of the hardware while the VRF has the VNI (found on
/// real SONiC 202411, `docs/sonic.md`; sonic-configdb reference §4).
const ORCHAGENT_VRF: Marker = Marker {
    db: Db::State,
    table: "VRF_OBJECT_TABLE",
    by: "orchagent",
};
const INTFMGRD: Marker = Marker {
    db: Db::State,
    table: "INTERFACE_TABLE",
    by: "intfmgrd",
};
/// intfmgrd copies an interface's `vrf_name` into its marker's `vrf`.
const VRF_BINDING: Mirror = Mirror {
    marker: INTFMGRD,
    config_field: "vrf_name",
    marker_field: "vrf",
    in_place: InPlace::Never,
    on_update: false,
};

/// The catalogue: every CONFIG_DB table whose writes SONiC confirms
/// (sonic-configdb reference §4). Tables without an entry (`PORT` fields,
/// `SUPPRESS_VLAN_NEIGH`, the VTEP) are confirmed by nothing the agent
/// waits for.
pub const CATALOGUE: &[Confirmation] = &[
    Confirmation {
        table: Table::Vrf,
        marker: VRFMGRD_STATE,
        mirror: Some(Mirror {
            marker: Marker {
                db: Db::Appl,
                table: "VRF_TABLE",
                by: "vrfmgrd",
            },
            config_field: "vni",
            marker_field: "vni",
            in_place: InPlace::ThroughZero,
            on_update: true,
        }),
        special: None,
        object: Some(ORCHAGENT_VRF),
        claims: |d, name| d.tenant_vrf(name).then(|| Key::vrf(name)),
    },
    Confirmation {
        table: Table::Vlan,
        marker: Marker {
            db: Db::State,
            table: "VLAN_TABLE",
            by: "vlanmgrd",
        },
        mirror: None,
        special: None,
        object: None,
        claims: |d, name| d.tenant_vlan(name).then(|| Key::new(Table::Vlan, name)),
    },
    Confirmation {
        table: Table::VlanMember,
        marker: Marker {
            db: Db::State,
            table: "VLAN_MEMBER_TABLE",
            by: "vlanmgrd",
        },
        mirror: None,
        special: Some(Special::BridgePort),
        object: None,
        claims: |d, name| {
            let (vlan, port) = name.split_once(SEP)?;
            let pxe = vid_of_vlan_name(vlan) == Some(d.spec.pxe_vlan);
            (d.tenant_vlan(vlan) || (pxe && d.managed(port)))
                .then(|| Key::new(Table::VlanMember, name))
        },
    },
    Confirmation {
        table: Table::Interface,
        marker: INTFMGRD,
        mirror: Some(VRF_BINDING),
        special: Some(Special::RouterInterface),
        object: None,
        claims: |d, name| {
            (!name.contains(SEP) && !d.tenant_vlan(name) && d.managed(name))
                .then(|| Key::interface(name))
        },
    },
    Confirmation {
        table: Table::VlanInterface,
        marker: INTFMGRD,
        mirror: Some(VRF_BINDING),
        special: Some(Special::RouterInterface),
        object: None,
        claims: |d, name| {
            (!name.contains(SEP) && d.tenant_vlan(name))
                .then(|| Key::new(Table::VlanInterface, name))
        },
    },
    Confirmation {
        table: Table::VxlanTunnelMap,
        marker: Marker {
            db: Db::Appl,
            table: "VXLAN_TUNNEL_MAP_TABLE",
            by: "vxlanmgrd",
        },
        mirror: None,
        special: None,
        object: None,
        claims: |d, name| {
            let map = name.rsplit(SEP).next().unwrap_or("");
            map.strip_prefix("map_")
                .and_then(|r| r.split_once('_'))
                .is_some_and(|(_, vlan)| d.tenant_vlan(vlan))
                .then(|| Key::new(Table::VxlanTunnelMap, name))
        },
    },
];

/// What SONiC confirms for `table`, if anything.
pub fn of(table: Table) -> Option<&'static Confirmation> {
    CATALOGUE.iter().find(|c| c.table == table)
}

impl Confirmation {
    /// The markers whose going confirms the entry's deletion: its own, then
    /// its object's.
    pub fn deletion_markers(&self) -> impl Iterator<Item = &Marker> {
        std::iter::once(&self.marker).chain(self.object.as_ref())
    }

    /// Every marker of the entry: its own, its object's, its mirror's.
    fn markers(&self) -> impl Iterator<Item = &Marker> {
        self.deletion_markers()
            .chain(self.mirror.as_ref().map(|m| &m.marker))
    }
}

/// The marker tables of `db` the agent watches (each once, in catalogue order).
pub fn watched(db: Db) -> impl Iterator<Item = &'static str> {
    let mut seen: Vec<&'static str> = Vec::new();
    for m in CATALOGUE.iter().flat_map(Confirmation::markers) {
        if m.db == db && !seen.contains(&m.table) {
            seen.push(m.table);
        }
    }
    seen.into_iter()
}

/// Whether `table` of `db` is a watched marker table.
pub fn watches(db: Db, table: &str) -> bool {
    CATALOGUE
        .iter()
        .flat_map(Confirmation::markers)
        .any(|m| m.db == db && m.table == table)
}

/// The entries whose deletion waits for a marker in a `db` table, each
/// with that marker (its own or its object's).
pub fn with_marker(
    db: Db,
    table: &str,
) -> impl Iterator<Item = (&'static Confirmation, &'static Marker)> {
    CATALOGUE.iter().flat_map(move |c| {
        c.deletion_markers()
            .filter(move |m| m.db == db && m.table == table)
            .map(move |m| (c, m))
    })
}

/// The entries with a special confirmation.
pub fn with_special(special: Special) -> impl Iterator<Item = &'static Confirmation> {
    CATALOGUE.iter().filter(move |c| c.special == Some(special))
}

/// `ifname`'s router interface is gone.
pub fn rif_gone(ifname: &str) -> Condition {
    Condition::new(
        Db::Counters,
        RIF_NAME_MAP,
        "",
        Check::FieldGone {
            field: ifname.to_owned(),
        },
        "orchagent removed the router interface",
    )
}

/// No ASIC bridge port points at `port`.
pub fn no_bridge_port(port: &str) -> Condition {
    Condition::new(Db::Asic, "", port, Check::NoBridgePort, "orchagent")
}

/// What a marker of an owned entry says about a copied field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Copied {
    /// The marker has the CONFIG_DB value.
    Confirmed,
    /// Not yet: wait for this condition.
    Wait(Condition),
    /// The daemon will never apply the value in place: replace the entry.
    Replace,
}

impl Mirror {
    /// Compare the copy of `name`'s field (`marker`: the marker's fields;
    /// `None` absent, `Some(None)` present but not read) with the CONFIG_DB
    /// entry's `fields`.
    pub fn compare(&self, name: &str, fields: &Fields, marker: Option<Option<&Fields>>) -> Copied {
        let wanted = self.in_place.value(fields, self.config_field);
        let seen: Option<String> = match marker {
            Some(Some(m)) => Some(self.in_place.value(m, self.marker_field)),
            None => self.in_place.absent().map(str::to_owned),
            Some(None) => None,
        };
        match seen {
            Some(s) if s == wanted => Copied::Confirmed,
            Some(s) if self.in_place.must_replace(&wanted, &s) => Copied::Replace,
            _ => Copied::Wait(self.marker.field_is(name, self.marker_field, &wanted)),
        }
    }
}

/// The agent's domain for one desired state: which names a marker may
/// carry for an entry the agent owns (or owned before it deleted it).
#[derive(Debug, Clone, Copy)]
pub struct Domain<'a> {
    pub spec: &'a SwitchSpec,
}

impl<'a> Domain<'a> {
    pub fn new(spec: &'a SwitchSpec) -> Domain<'a> {
        Domain { spec }
    }

    /// `Vlan<id>` with an id of the tenant range.
    pub fn tenant_vlan(&self, name: &str) -> bool {
        vid_of_vlan_name(name).is_some_and(|v| self.spec.vlan_range.contains(v))
    }

    /// `Vrf<VNI>` that no operator declared static.
    pub fn tenant_vrf(&self, name: &str) -> bool {
        vni_of_vrf_name(name).is_some() && !self.spec.static_vrfs.contains(name)
    }

    /// A port the agent manages.
    pub fn managed(&self, port: &str) -> bool {
        self.spec.ports.contains_key(port)
    }
}

/// Key separators of the databases (from `database_config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Separators {
    pub appl: char,
    pub state: char,
    pub counters: char,
    pub asic: char,
}

impl Default for Separators {
    fn default() -> Self {
        Separators {
            appl: Db::Appl.default_separator(),
            state: Db::State.default_separator(),
            counters: Db::Counters.default_separator(),
            asic: Db::Asic.default_separator(),
        }
    }
}

impl Separators {
    pub fn of(&self, db: Db) -> char {
        match db {
            Db::Appl => self.appl,
            Db::State => self.state,
            Db::Counters => self.counters,
            Db::Asic => self.asic,
        }
    }

    /// The key prefix of ASIC bridge ports (`ASIC_STATE:SAI_OBJECT_TYPE_BRIDGE_PORT:`).
    pub fn bridge_port_prefix(&self) -> String {
        format!("ASIC_STATE{0}{BRIDGE_PORT_TYPE}{0}", self.asic)
    }
}

#[cfg(test)]
mod tests {
    //! The catalogue against sonic-configdb reference §4 (which daemon
    //! writes which marker), not against the planner.
    use super::*;

    #[test]
    fn the_feed_watches_every_marker_table_once() {
        assert_eq!(
            watched(Db::State).collect::<Vec<_>>(),
            [
                "VRF_TABLE",
                "VRF_OBJECT_TABLE",
                "VLAN_TABLE",
                "VLAN_MEMBER_TABLE",
                "INTERFACE_TABLE"
            ]
        );
        assert_eq!(
            watched(Db::Appl).collect::<Vec<_>>(),
            ["VRF_TABLE", "VXLAN_TUNNEL_MAP_TABLE"]
        );
        assert!(watches(Db::Appl, "VRF_TABLE"));
        assert!(watches(Db::State, "VRF_OBJECT_TABLE"));
        assert!(!watches(Db::Appl, "INTERFACE_TABLE"));
    }

    #[test]
    fn markers_by_daemon() {
        let by = |t: Table| of(t).map(|c| (c.marker.db.name(), c.marker.table, c.marker.by));
        assert_eq!(by(Table::Vrf), Some(("STATE_DB", "VRF_TABLE", "vrfmgrd")));
        assert_eq!(
            by(Table::Vlan),
            Some(("STATE_DB", "VLAN_TABLE", "vlanmgrd"))
        );
        assert_eq!(
            by(Table::VlanMember),
            Some(("STATE_DB", "VLAN_MEMBER_TABLE", "vlanmgrd"))
        );
        for t in [Table::Interface, Table::VlanInterface] {
            assert_eq!(by(t), Some(("STATE_DB", "INTERFACE_TABLE", "intfmgrd")));
        }
        assert_eq!(
            by(Table::VxlanTunnelMap),
            Some(("APPL_DB", "VXLAN_TUNNEL_MAP_TABLE", "vxlanmgrd"))
        );
        // orchagent's VRF object (reference §4: removed after vrfmgrd's
        // marker); no other table has one.
        let object = |t: Table| of(t).and_then(|c| c.object);
        assert_eq!(
            object(Table::Vrf).map(|m| (m.db.name(), m.table, m.by)),
            Some(("STATE_DB", "VRF_OBJECT_TABLE", "orchagent"))
        );
        for c in CATALOGUE.iter().filter(|c| c.table != Table::Vrf) {
            assert!(c.object.is_none(), "{}", c.table);
        }
        for t in [
            Table::Port,
            Table::SuppressVlanNeigh,
            Table::VxlanTunnel,
            Table::VxlanEvpnNvo,
        ] {
            assert!(of(t).is_none(), "{t}");
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_vni_changes_through_zero_and_a_binding_never_in_place() {
        let vni = of(Table::Vrf).and_then(|c| c.mirror).unwrap();
        let conf = fields(&[("vni", "104009")]);
        // vrfmgrd has not got to it yet, or applies it from 0.
        assert!(matches!(vni.compare("Vrf1", &conf, None), Copied::Wait(_)));
        let zero = fields(&[("vni", "0")]);
        assert!(matches!(
            vni.compare("Vrf1", &conf, Some(Some(&zero))),
            Copied::Wait(_)
        ));
        // Changed directly: never applied.
        let other = fields(&[("vni", "104010")]);
        assert_eq!(
            vni.compare("Vrf1", &conf, Some(Some(&other))),
            Copied::Replace
        );
        assert_eq!(
            vni.compare("Vrf1", &conf, Some(Some(&conf))),
            Copied::Confirmed
        );
        // A VRF without VNI and no APPL entry: nothing to wait for.
        assert_eq!(vni.compare("Vrf1", &Fields::new(), None), Copied::Confirmed);

        let binding = VRF_BINDING;
        let conf = fields(&[("vrf_name", "Vrf1")]);
        assert!(matches!(
            binding.compare("Ethernet1", &conf, None),
            Copied::Wait(_)
        ));
        assert!(matches!(
            binding.compare("Ethernet1", &conf, Some(None)),
            Copied::Wait(_)
        ));
        let none = fields(&[("vrf", "")]);
        assert_eq!(
            binding.compare("Ethernet1", &conf, Some(Some(&none))),
            Copied::Replace
        );
        let same = fields(&[("vrf", "Vrf1")]);
        assert_eq!(
            binding.compare("Ethernet1", &conf, Some(Some(&same))),
            Copied::Confirmed
        );
    }
}
