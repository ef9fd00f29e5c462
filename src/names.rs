//! Name rules for everything that reaches CONFIG_DB keys or `frr.conf`, and
//! how input is shown in messages (pure; used by the configuration, the
//! spec, the API's wire types and the CONFIG_DB adapter alike).
//!
//! SONiC's daemons parse keys with `stoi`/`stoul` and pass names to
//! `ip link add`; FRR reads names as configuration tokens. A name with
//! whitespace, a control character, `!` (an FRR comment) or `|` (the
//! CONFIG_DB key separator) could change the meaning of either, so it is
//! refused here, before anything is written.
//!
//! Input echoed in a message goes through [`quoted`] or [`escaped`]: control
//! characters (a newline would forge a line of the report) and Unicode
//! format characters such as `U+202E` (which reorder what a terminal shows)
//! are escaped, and long values are cut.

use std::fmt;

/// Linux `IFNAMSIZ - 1`: the longest network device name.
pub const IFNAME_MAX: usize = 15;

/// Characters of input shown in one message at most, per value.
pub const SHOWN_CHARS: usize = 64;

/// Characters of a text from outside shown at most: an API's error
/// message, a parser's error, a BGP peer's host name, an LLDP id.
pub const MESSAGE_CHARS: usize = 300;

/// Whether `c` must be escaped when input is shown: control characters and
/// the invisible format characters that change how text is displayed
/// (bidirectional overrides and isolates, zero-width characters, BOM).
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}')
}

/// `s` as a quoted string for a message: `"`, `\`, control and format
/// characters escaped like Rust's `{:?}`, and cut after [`SHOWN_CHARS`]
/// characters (with the full length in bytes).
pub fn quoted(s: &str) -> String {
    quoted_bytes(s.as_bytes())
}

/// [`quoted`] of bytes that may not be UTF-8 (a key or value read from
/// redis): each byte that is not part of a UTF-8 character is shown as
/// `\xNN` (and counts as one character towards [`SHOWN_CHARS`]).
pub fn quoted_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().min(SHOWN_CHARS * 2) + 2);
    out.push('"');
    let mut shown = 0;
    for chunk in b.utf8_chunks() {
        let bad = chunk.invalid().iter().map(|&x| Err(x));
        for c in chunk.valid().chars().map(Ok).chain(bad) {
            if shown == SHOWN_CHARS {
                out.push_str(&format!("…\" ({} bytes)", b.len()));
                return out;
            }
            shown += 1;
            match c {
                Ok(c @ ('"' | '\\' | '\n' | '\r' | '\t' | '\0')) => out.extend(c.escape_debug()),
                Ok(c) if needs_escape(c) => out.extend(c.escape_unicode()),
                Ok(c) => out.push(c),
                Err(x) => out.push_str(&format!("\\x{x:02x}")),
            }
        }
    }
    out.push('"');
    out
}

/// A message that may contain input (a parser's error text): control and
/// format characters escaped (`\n`, `\u{202e}`), at most `max` characters.
pub fn escaped(message: &str, max: usize) -> String {
    let mut out = String::with_capacity(message.len().min(max) + 8);
    for (i, c) in message.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match c {
            '\n' | '\r' | '\t' | '\0' => out.extend(c.escape_debug()),
            c if needs_escape(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// Why `s` is not acceptable as an identifier, or `None` if it is.
///
/// Identifiers (port, VRF, VTEP names) are printable ASCII without
/// whitespace, `!` and `|`, at most 128 characters.
pub fn identifier_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".into());
    }
    // Quoted only for a message: valid names (nearly all) cost no allocation.
    let shown = || quoted(s);
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "{} contains whitespace or a control character ({c:?})",
            shown()
        ));
    }
    if let Some(c) = s.chars().find(|c| !c.is_ascii()) {
        return Some(format!(
            "{} contains {}, which is not printable ASCII",
            shown(),
            c.escape_unicode()
        ));
    }
    if s.contains('!') {
        return Some(format!("{} contains '!'", shown()));
    }
    if s.contains('|') {
        return Some(format!("{} contains '|'", shown()));
    }
    if s.len() > 128 {
        return Some(format!("{} is longer than 128 characters", shown()));
    }
    None
}

/// Why `s` is not a valid network device name (identifier rules plus at
/// most 15 characters), or `None`.
pub fn ifname_problem(s: &str) -> Option<String> {
    identifier_problem(s).or_else(|| {
        (s.len() > IFNAME_MAX).then(|| {
            format!(
                "{} is {} characters long; a network device name has at most {IFNAME_MAX}",
                quoted(s),
                s.len()
            )
        })
    })
}

/// Why `s` is not an RFC 1123 host name, or `None`.
pub fn hostname_problem(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > 253 {
        return Some(format!("{} is not 1..253 characters long", quoted(s)));
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
                "{} is not an RFC 1123 host name (label {})",
                quoted(s),
                quoted(label)
            ));
        }
    }
    None
}

/// A decimal number written canonically (digits only, no leading zero).
pub fn parse_canonical(digits: &str) -> Option<u32> {
    let b = digits.as_bytes();
    if b.is_empty()
        || b.len() > 10
        || (b[0] == b'0' && b.len() > 1)
        || !b.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    digits.parse().ok()
}

/// Problems listed in one message at most; the others are counted, so a
/// document with thousands of bad nics gives a short error.
pub const MAX_LISTED: usize = 20;

/// `n` and `what`, plural when `n` is not 1: `3 problems`.
pub fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// `items` as an indented list, one per line (`\n  - item`), at most
/// [`MAX_LISTED`] of them, then `\n  - … and K more`.
pub fn listed<T: fmt::Display>(items: &[T]) -> String {
    let mut out = String::new();
    for item in items.iter().take(MAX_LISTED) {
        out.push_str(&format!("\n  - {item}"));
    }
    if items.len() > MAX_LISTED {
        out.push_str(&format!("\n  - … and {} more", items.len() - MAX_LISTED));
    }
    out
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
    fn non_ascii_and_format_characters_are_refused_and_escaped() {
        let p = identifier_problem("Ethernet\u{202e}0").unwrap();
        assert_eq!(
            p,
            "\"Ethernet\\u{202e}0\" contains \\u{202e}, which is not printable ASCII"
        );
        assert!(!p.contains('\u{202e}'));
        assert!(identifier_problem("Eth\u{e9}rnet0").is_some());
    }

    #[test]
    fn quoted_escapes_and_cuts() {
        assert_eq!(quoted("a\nb\"c"), "\"a\\nb\\\"c\"");
        assert_eq!(quoted("x\u{202e}y\u{2066}"), "\"x\\u{202e}y\\u{2066}\"");
        let long = "a".repeat(1000);
        let q = quoted(&long);
        assert!(q.ends_with("…\" (1000 bytes)"), "{q}");
        assert!(q.len() < 100);
        assert_eq!(escaped("line\nnext\u{202e}", 100), "line\\nnext\\u{202e}");
        assert_eq!(escaped("abcdef", 3), "abc…");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_shown_as_hex() {
        assert_eq!(quoted_bytes(b"caf\xe9"), "\"caf\\xe9\"");
        assert_eq!(quoted_bytes(b"\xff\n\xc3\xa9"), "\"\\xff\\né\"");
        assert_eq!(quoted_bytes("x\u{202e}".as_bytes()), "\"x\\u{202e}\"");
        let long = [0xffu8; 1000];
        let q = quoted_bytes(&long);
        assert!(q.ends_with("…\" (1000 bytes)"), "{q}");
        assert_eq!(q.matches("\\xff").count(), SHOWN_CHARS);
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
