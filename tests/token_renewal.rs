//! Issue 21, item 4: v2 tokens renew. The real `metal-switchd run` against
//! the lab API server, which issues expiring tokens (JWTs with `exp`) and
//! implements `TokenService/Refresh` (`metal_switchd_lab::api_server::tokens`):
//! the agent renews before each expiry, writes the new token over the old
//! file (same owner and mode), uses it, and rides across two expiries
//! without one call answered `unauthenticated`. A failed renewal is retried
//! and reported (metrics, log) while the old token is kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, SystemTime};

use metal_switchd_lab::api_server::{Call, Fault, TokenGrant};
use metal_switchd_lab::sonic::StandInOptions;
use support::Switch;
use support::agent::wait_for;
use support::lab::{HANG, Lab, leaf01_doc, metric};
use support::model;

const PORTS: &[&str] = &["Ethernet0", "Ethernet1", "Ethernet2"];
/// Each token's lifetime; renewal is due with a quarter of it left.
const LIFETIME: Duration = Duration::from_secs(24);

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn the_daemon_renews_its_token_across_two_expiries() {
    let sw = Switch::leaf01_with_foreign(StandInOptions::default());
    let lab = Lab::new(sw, PORTS, &leaf01_doc(&[]), model::FOREIGN_SETTINGS);
    let token_file = lab.path("token");
    let first = lab.server.issue_token(TokenGrant::Editor, LIFETIME, true);
    std::fs::write(&token_file, format!("{first}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let owner = {
        let m = std::fs::metadata(&token_file).unwrap();
        (m.uid(), m.gid())
    };
    // The first two renewal calls fail: retried, reported, the old token kept.
    lab.server
        .inject(Fault::status(Call::V2TokenRefresh, 503, 2));

    let agent = lab.start("agent", &[]);
    lab.wait_converged(&agent, 0, "the first convergence");

    // Two renewals: tokens 1 and 2.
    wait_for("two renewals", HANG, &agent, || {
        (lab.server.issued_tokens().len() >= 3).then_some(())
    });
    let tokens = lab.server.issued_tokens();
    assert_eq!(tokens[1].refreshed_from, Some(0));
    assert_eq!(tokens[2].refreshed_from, Some(1));
    // Renewed before each expiry, a quarter of the lifetime ahead at most.
    for t in &tokens[1..3] {
        let old = &tokens[t.refreshed_from.unwrap()];
        assert!(
            t.issued_at < old.expires,
            "token {} renewed at {} after {} expired at {}",
            old.index,
            t.issued_at,
            old.index,
            old.expires
        );
    }
    // Across the second expiry: once token 1 has expired, the agent still
    // converges (with token 2 or later).
    wait_for("token 1 to expire", HANG, &agent, || {
        (unix_now() > tokens[1].expires).then_some(())
    });
    let after = lab.last_seq();
    lab.wait_converged(&agent, after, "a heartbeat after two expiries");

    let records = lab.server.records();
    let unauthenticated: Vec<_> = records.iter().filter(|r| r.status == 401).collect();
    assert!(
        unauthenticated.is_empty(),
        "calls with an expired token: {unauthenticated:#?}"
    );
    let refreshes = lab.server.records_of(Call::V2TokenRefresh);
    let statuses: Vec<u16> = refreshes.iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..3], &[503, 503, 200], "{statuses:?}");
    // The file holds the newest token, replaced with the old owner and mode.
    let now_in_file = std::fs::read_to_string(&token_file).unwrap();
    let newest = lab.server.issued_tokens();
    assert!(
        newest[2..].iter().any(|t| now_in_file.trim() == t.secret),
        "the token file does not hold a renewed token"
    );
    let m = std::fs::metadata(&token_file).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_eq!((m.uid(), m.gid()), owner);
    let left: Vec<String> = std::fs::read_dir(lab.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".token."))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    // Reported: the refresh_token metric counts every attempt and the two
    // failures; the log says the old token is kept.
    let metrics = lab.metrics();
    let calls = metric(
        &metrics,
        "metal_switchd_api_requests_total",
        "call=\"refresh_token\"",
    )
    .unwrap_or(0.0);
    assert!(
        calls >= 4.0,
        "{calls} refresh_token calls counted\n{metrics}"
    );
    let failed = metric(
        &metrics,
        "metal_switchd_api_errors_total",
        "call=\"refresh_token\",kind=\"transient\"",
    )
    .unwrap_or(0.0);
    assert_eq!(failed, 2.0, "{metrics}");
    let log = agent.log_text();
    assert!(
        log.contains("renewing the v2 token failed; the old token is used while it is valid"),
        "{log}"
    );
    assert!(log.contains("the v2 token was renewed"), "{log}");
    assert!(!log.contains(&first), "the token reached the log");
}
