//! The SONiC stand-in's kernel side on this machine's kernel (no `vrf`,
//! `vlan` or bridge VLAN filtering): it applies what it can — MTU and admin
//! state on the ports' veths, as portmgrd would — and says what it skipped.
//! The full-kernel behaviour is tested in the VM (`tests/kernel_vm.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use metal_switchd::kernel::KernelView;
use metal_switchd_lab::netns::Netns;
use metal_switchd_lab::sonic::StandInOptions;
use support::kernel::{add_ports, small_leaf};
use support::{Switch, assert_no_violations};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_in_applies_mtu_and_admin_state_and_says_what_it_skipped() {
    let ns = Netns::new("sk").unwrap_or_else(|e| panic!("{e:#}"));
    add_ports(&ns);
    let view = KernelView::start_in_netns(ns.path()).await.unwrap();
    let sw = Switch::leaf01(StandInOptions {
        kernel_netns: Some(ns.name().to_owned()),
        ..StandInOptions::uniform(Duration::from_millis(2))
    });
    let cfg = sw.config("");
    sw.apply(&cfg, &small_leaf()).await.unwrap();

    // Reference §2.3: metal-core's MTU is 9216 on underlay and firewall
    // ports, 9000 on machine and unprovisioned ports; portmgrd applies it
    // with `ip link set dev <p> mtu <m>`, and admin_status with up/down.
    let want = [
        ("Ethernet0", 9216),
        ("Ethernet1", 9000),
        ("Ethernet2", 9000),
        ("Ethernet3", 9000),
        ("Ethernet4", 9000),
        ("Ethernet120", 9216),
        ("Ethernet124", 9216),
    ];
    let s = view
        .wait_for(WAIT, |s| {
            want.iter()
                .all(|(p, m)| s.link(p).and_then(|l| l.mtu) == Some(*m))
                && s.link("Ethernet2").is_some_and(|l| l.admin_up)
                && s.link("Ethernet4").is_some_and(|l| !l.admin_up)
        })
        .await
        .unwrap_or_else(|s| {
            let got: Vec<_> = want
                .iter()
                .map(|(p, _)| (p, s.link(p).and_then(|l| l.mtu)))
                .collect();
            panic!("MTU / admin state never applied: {got:?}")
        });
    assert!(s.link("Ethernet2").unwrap().running, "up with its peer up");

    let k = sw.standin().netdevs().expect("kernel side");
    let skipped = k.skipped();
    if k.caps().full() {
        assert!(s.link("Vrf104009").is_some(), "a full kernel gets VRFs");
    } else {
        assert!(
            skipped
                .iter()
                .any(|x| x.contains("lacks what SONiC's managers need")),
            "{skipped:#?}"
        );
        assert!(
            skipped
                .iter()
                .any(|x| x.contains("VrfAdd") && x.contains("Vrf104009")),
            "{skipped:#?}"
        );
        assert!(s.vrfs().is_empty());
        assert!(s.link("Bridge").is_none());
    }
    // Ports of the port map without a netdev here are skipped, not failed.
    assert!(
        skipped
            .iter()
            .any(|x| x.contains("portmgrd: Ethernet5 has no netdev")),
        "{skipped:#?}"
    );
    assert_no_violations(&sw);
}
