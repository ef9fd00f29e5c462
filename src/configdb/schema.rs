//! CONFIG_DB tables, keys and entries as plain data.
//!
//! A [`Key`] is a table plus the rest of the redis key (its parts joined with
//! `|`, CONFIG_DB's separator); an entry is a hash of string fields. Entries
//! without attributes carry SONiC's placeholder `NULL: NULL`. [`DbState`] is
//! a snapshot of the tables the agent reads, owned or not.

use std::collections::BTreeMap;
use std::fmt;

pub use crate::names::parse_canonical;

use compact_str::CompactString;
use rustc_hash::FxHashMap;
use serde::{Serialize, Serializer};

/// The key separator of CONFIG_DB (and STATE_DB).
pub const SEP: char = '|';
/// Placeholder field of an entry without attributes.
pub const NULL_FIELD: &str = "NULL";

/// The CONFIG_DB tables the agent reads. The order is the order of output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Port,
    Interface,
    Vrf,
    Vlan,
    VlanMember,
    VlanInterface,
    SuppressVlanNeigh,
    VxlanTunnel,
    VxlanTunnelMap,
    VxlanEvpnNvo,
}

impl Table {
    /// Every table the agent reads, in output order.
    pub const ALL: [Table; 10] = [
        Table::Port,
        Table::Interface,
        Table::Vrf,
        Table::Vlan,
        Table::VlanMember,
        Table::VlanInterface,
        Table::SuppressVlanNeigh,
        Table::VxlanTunnel,
        Table::VxlanTunnelMap,
        Table::VxlanEvpnNvo,
    ];

    /// The table's name in redis keys.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Port => "PORT",
            Table::Interface => "INTERFACE",
            Table::Vrf => "VRF",
            Table::Vlan => "VLAN",
            Table::VlanMember => "VLAN_MEMBER",
            Table::VlanInterface => "VLAN_INTERFACE",
            Table::SuppressVlanNeigh => "SUPPRESS_VLAN_NEIGH",
            Table::VxlanTunnel => "VXLAN_TUNNEL",
            Table::VxlanTunnelMap => "VXLAN_TUNNEL_MAP",
            Table::VxlanEvpnNvo => "VXLAN_EVPN_NVO",
        }
    }

    pub fn from_name(s: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == s)
    }

    /// The fields the agent writes in this table: inside an entry it owns,
    /// the agent owns these fields and no others. A field outside this list
    /// (one a SONiC flavour's own daemons or CLI, or an operator, added —
    /// Dell's `admin_status`, `autostate`, `dhcp_relay_*` on a VLAN) is
    /// never changed or removed; it goes only with its entry. `PORT`: only
    /// the fields a target lists (`admin_status` only when the API sets
    /// one). The placeholder `NULL` is not a field.
    pub const fn owned_fields(self) -> &'static [&'static str] {
        match self {
            Table::Port => &["mtu", "admin_status"],
            Table::Interface => &["ipv6_use_link_local_only", "vrf_name"],
            Table::Vrf => &["vni", "fallback"],
            Table::Vlan => &["vlanid"],
            Table::VlanMember => &["tagging_mode"],
            Table::VlanInterface => &["vrf_name"],
            Table::SuppressVlanNeigh => &["suppress"],
            Table::VxlanTunnelMap => &["vlan", "vni"],
            Table::VxlanTunnel | Table::VxlanEvpnNvo => &[],
        }
    }

    /// Whether the agent owns `field` in this table's owned entries.
    pub fn owns_field(self, field: &str) -> bool {
        self.owned_fields().contains(&field)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A CONFIG_DB key: `<TABLE>|<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub table: Table,
    /// The key without the table, parts joined with `|`.
    pub name: String,
}

impl Key {
    pub fn new(table: Table, name: impl Into<String>) -> Key {
        Key {
            table,
            name: name.into(),
        }
    }

    /// Parse a full redis key (`VLAN_MEMBER|Vlan4000|Ethernet0`); `None` for
    /// tables the agent does not read.
    pub fn parse(full: &str) -> Option<Key> {
        let (table, name) = full.split_once(SEP)?;
        Some(Key::new(Table::from_name(table)?, name))
    }

    /// The key parts after the table (`["Vlan4000", "Ethernet0"]`).
    pub fn parts(&self) -> impl Iterator<Item = &str> {
        self.name.split(SEP)
    }

    /// The redis key with CONFIG_DB's separator.
    pub fn redis_key(&self) -> String {
        format!("{}{SEP}{}", self.table.name(), self.name)
    }

    // Constructors for the keys the agent writes.
    pub fn port(port: &str) -> Key {
        Key::new(Table::Port, port)
    }
    pub fn interface(port: &str) -> Key {
        Key::new(Table::Interface, port)
    }
    pub fn vrf(vrf: &str) -> Key {
        Key::new(Table::Vrf, vrf)
    }
    pub fn vlan(vid: u16) -> Key {
        Key::new(Table::Vlan, vlan_name(vid))
    }
    pub fn vlan_member(vid: u16, port: &str) -> Key {
        Key::new(Table::VlanMember, format!("Vlan{vid}{SEP}{port}"))
    }
    pub fn vlan_interface(vid: u16) -> Key {
        Key::new(Table::VlanInterface, vlan_name(vid))
    }
    pub fn suppress_vlan_neigh(vid: u16) -> Key {
        Key::new(Table::SuppressVlanNeigh, vlan_name(vid))
    }
    pub fn vxlan_tunnel_map(vtep: &str, vni: u32, vid: u16) -> Key {
        Key::new(
            Table::VxlanTunnelMap,
            format!("{vtep}{SEP}{}", map_name(vni, vid)),
        )
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEP}{}", self.table.name(), self.name)
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `Vlan<id>`.
pub fn vlan_name(vid: u16) -> String {
    format!("Vlan{vid}")
}

/// The VLAN id of `Vlan<id>` (no leading zeros, 1..=4095).
pub fn vid_of_vlan_name(name: &str) -> Option<u16> {
    let vid: u16 = parse_canonical(name.strip_prefix("Vlan")?)?
        .try_into()
        .ok()?;
    (1..=4095).contains(&vid).then_some(vid)
}

/// Append the decimal form of `n` to `buf` (no formatting machinery).
pub fn push_decimal(buf: &mut String, n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in &digits[i..] {
        buf.push(char::from(*d));
    }
}

/// The VXLAN map name metal-stack and the SONiC CLI use: `map_<vni>_Vlan<id>`.
pub fn map_name(vni: u32, vid: u16) -> String {
    format!("map_{vni}_Vlan{vid}")
}

/// The fields of `PORT` entries the agent reads from redis (it never writes
/// other fields and never creates or deletes the key).
pub const PORT_FIELDS: [&str; 3] = ["alias", "mtu", "admin_status"];

/// Fields of an entry: a small map kept as a vector sorted by field name.
/// Most entries have one to three fields; a B-tree would reserve room for
/// eleven per node, and for thousands of entries that is most of the memory
/// a snapshot takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn new() -> Self {
        Fields(Vec::new())
    }

    pub fn with_capacity(n: usize) -> Self {
        Fields(Vec::with_capacity(n))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, field: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(field))
    }

    /// The value of a field (a scan with equality tests: few fields, and
    /// most names differ in length).
    pub fn get(&self, field: &str) -> Option<&String> {
        self.0.iter().find(|(k, _)| k == field).map(|(_, v)| v)
    }

    pub fn contains_key(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// Set a field; returns the previous value.
    pub fn insert(&mut self, field: String, value: String) -> Option<String> {
        match self.position(&field) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (field, value));
                None
            }
        }
    }

    pub fn remove(&mut self, field: &str) -> Option<String> {
        self.position(field).ok().map(|i| self.0.remove(i).1)
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }
}

impl Extend<(String, String)> for Fields {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl FromIterator<(String, String)> for Fields {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut f = Fields::new();
        f.extend(iter);
        f
    }
}

impl IntoIterator for Fields {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// Build a [`Fields`] from pairs; an empty list becomes `NULL: NULL`.
pub fn fields<const N: usize>(pairs: [(&str, String); N]) -> Fields {
    let mut f: Fields = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    if f.is_empty() {
        f.insert(NULL_FIELD.to_owned(), NULL_FIELD.to_owned());
    }
    f
}

/// A snapshot of the CONFIG_DB tables the agent reads: one hash map per
/// table, so that a lookup by table and name allocates nothing. Names of up
/// to 24 bytes (nearly all) are stored inline in the table, so a lookup does
/// not chase a pointer to compare them. Iteration order is unspecified;
/// [`DbState::sorted`] gives key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbState {
    tables: [FxHashMap<CompactString, Fields>; Table::ALL.len()],
}

impl Table {
    /// Position in [`Table::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl DbState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, key: Key, fields: Fields) {
        self.tables[key.table.index()].insert(CompactString::from(key.name), fields);
    }

    pub fn remove(&mut self, key: &Key) -> Option<Fields> {
        self.tables[key.table.index()].remove(key.name.as_str())
    }

    pub fn get(&self, key: &Key) -> Option<&Fields> {
        self.get_in(key.table, &key.name)
    }

    /// Lookup by table and name, without building a [`Key`].
    pub fn get_in(&self, table: Table, name: &str) -> Option<&Fields> {
        self.tables[table.index()].get(name)
    }

    /// Like [`DbState::get_in`], also returning the stored name (whose
    /// address identifies the entry while the state is not modified).
    pub fn entry_in(&self, table: Table, name: &str) -> Option<(&str, &Fields)> {
        self.tables[table.index()]
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.get(key).is_some()
    }

    pub fn get_mut(&mut self, key: &Key) -> Option<&mut Fields> {
        self.tables[key.table.index()].get_mut(key.name.as_str())
    }

    /// A field of an entry.
    pub fn field(&self, key: &Key, field: &str) -> Option<&str> {
        self.get(key)?.get(field).map(String::as_str)
    }

    /// Names and fields of one table, in no particular order.
    pub fn table(&self, table: Table) -> impl Iterator<Item = (&str, &Fields)> {
        self.tables[table.index()]
            .iter()
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries of one table.
    pub fn table_len(&self, table: Table) -> usize {
        self.tables[table.index()].len()
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &Fields)> {
        Table::ALL
            .into_iter()
            .flat_map(move |t| self.table(t).map(move |(n, f)| (Key::new(t, n), f)))
    }

    /// Every entry in key order.
    pub fn sorted(&self) -> BTreeMap<Key, &Fields> {
        self.iter().collect()
    }

    pub fn len(&self) -> usize {
        self.tables.iter().map(|t| t.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromIterator<(Key, Fields)> for DbState {
    fn from_iter<I: IntoIterator<Item = (Key, Fields)>>(iter: I) -> Self {
        let mut s = DbState::new();
        for (k, f) in iter {
            s.insert(k, f);
        }
        s
    }
}

impl Serialize for DbState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.sorted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/ownership.md lists each table's owned fields as the code has
    /// them.
    #[test]
    fn owned_fields_are_documented() {
        let doc = include_str!("../../docs/ownership.md");
        for t in Table::ALL {
            let fields = t.owned_fields();
            if fields.is_empty() {
                continue;
            }
            let row = format!(
                "| `{}` | {}",
                t.name(),
                fields
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            assert!(doc.contains(&row), "docs/ownership.md lacks {row:?}");
        }
    }

    #[test]
    fn keys_parse_and_print() {
        let k = Key::parse("VLAN_MEMBER|Vlan4000|Ethernet0").unwrap();
        assert_eq!(k, Key::vlan_member(4000, "Ethernet0"));
        assert_eq!(k.parts().collect::<Vec<_>>(), ["Vlan4000", "Ethernet0"]);
        assert_eq!(k.to_string(), "VLAN_MEMBER|Vlan4000|Ethernet0");
        assert!(Key::parse("VXLAN_TUNNEL|vtep").is_some());
        assert_eq!(
            Key::parse("VXLAN_TUNNEL_MAP|vtep|map_1_Vlan2")
                .unwrap()
                .table,
            Table::VxlanTunnelMap
        );
        assert!(Key::parse("ACL_RULE|x").is_none());
        assert!(Key::parse("CONFIG_DB_INITIALIZED").is_none());
    }

    #[test]
    fn vlan_names() {
        assert_eq!(vid_of_vlan_name("Vlan1001"), Some(1001));
        assert_eq!(vid_of_vlan_name("Vlan01001"), None);
        assert_eq!(vid_of_vlan_name("Vlan"), None);
        assert_eq!(vid_of_vlan_name("Vlanx"), None);
        assert_eq!(vid_of_vlan_name("Vlan+5"), None);
        assert_eq!(vid_of_vlan_name("Vlan0"), None);
        assert_eq!(vid_of_vlan_name("Vlan4096"), None);
        let mut b = String::from("x");
        for n in [0, 7, 10, 4094, u32::MAX] {
            b.truncate(1);
            push_decimal(&mut b, n);
            assert_eq!(b, format!("x{n}"));
        }
    }

    #[test]
    fn fields_stay_sorted_and_unique() {
        let mut f: Fields = [("vni", "1"), ("fallback", "false"), ("vni", "2")]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect();
        assert_eq!(
            f.keys().map(String::as_str).collect::<Vec<_>>(),
            ["fallback", "vni"]
        );
        assert_eq!(f.get("vni").map(String::as_str), Some("2"));
        assert_eq!(f.insert("a".into(), "x".into()), None);
        assert_eq!(f.remove("fallback").as_deref(), Some("false"));
        assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"a":"x","vni":"2"}"#);
    }

    #[test]
    fn table_ranges() {
        let s: DbState = [
            (Key::vlan(1), fields([])),
            (Key::vrf("Vrf1"), fields([])),
            (Key::vlan(2), fields([])),
            (Key::vlan_member(1, "Ethernet0"), fields([])),
        ]
        .into_iter()
        .collect();
        assert_eq!(s.table(Table::Vlan).count(), 2);
        assert_eq!(s.table(Table::Vrf).count(), 1);
        assert_eq!(s.table(Table::VlanMember).count(), 1);
        assert_eq!(s.table(Table::Port).count(), 0);
        assert_eq!(s.get(&Key::vlan(1)).unwrap().get("NULL").unwrap(), "NULL");
    }
}
