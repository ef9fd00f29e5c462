//! Name rules for everything that reaches CONFIG_DB keys or `frr.conf`.
//!
//! SONiC's daemons parse keys with `stoi`/`stoul` and pass names to
//! `ip link add`; FRR reads names as configuration tokens. A name with
//! whitespace, a control character, `!` (an FRR comment) or `|` (the
//! CONFIG_DB key separator) could change the meaning of either, so it is
//! refused here, before anything is written.

/// Linux `IFNAMSIZ - 1`: the longest network device name.
pub const IFNAME_MAX: usize = 15;

/// Why `s` is not acceptable as an identifier, or `None` if it is.
pub fn identifier_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".into());
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "{:?} contains whitespace or a control character ({c:?})",
            s
        ));
    }
    if s.contains('!') {
        return Some(format!("{s:?} contains '!'"));
    }
    if s.contains('|') {
        return Some(format!("{s:?} contains '|'"));
    }
    if s.len() > 128 {
        return Some(format!("{s:?} is longer than 128 characters"));
    }
    None
}

/// Why `s` is not a valid network device name (identifier rules plus at
/// most 15 characters), or `None`.
pub fn ifname_problem(s: &str) -> Option<String> {
    identifier_problem(s).or_else(|| {
        (s.len() > IFNAME_MAX).then(|| {
            format!(
                "{s:?} is {} characters long; a network device name has at most {IFNAME_MAX}",
                s.len()
            )
        })
    })
}

/// Why `s` is not an RFC 1123 host name, or `None`.
pub fn hostname_problem(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > 253 {
        return Some(format!("{s:?} is not 1..253 characters long"));
    }
    for label in s.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Some(format!(
                "{s:?} is not an RFC 1123 host name (label {label:?})"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert_eq!(identifier_problem("Ethernet0"), None);
        assert_eq!(identifier_problem("Eth1/1(Port1)"), None);
        for bad in [
            "",
            "Ether net0",
            "Ethernet0\n!",
            "Ethernet0!",
            "a|b",
            "tab\tx",
            "x\u{0}",
        ] {
            assert!(identifier_problem(bad).is_some(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ifnames() {
        assert_eq!(ifname_problem("vtep0-1001"), None);
        assert!(ifname_problem("averylongvtep-1001").is_some());
    }

    #[test]
    fn hostnames() {
        assert_eq!(hostname_problem("r01leaf01"), None);
        assert_eq!(hostname_problem("r01leaf01.example.com"), None);
        for bad in ["", "leaf_01", "-leaf", "leaf-", "a..b", "leaf 1", "leaf\n!"] {
            assert!(hostname_problem(bad).is_some(), "{bad:?} accepted");
        }
    }
}
