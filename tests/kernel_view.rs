//! The kernel view against the real kernel, in network namespaces on this
//! machine's kernel (veth, bridge without VLAN filtering, vxlan): port
//! oper-state events, management address changes, a VXLAN device's VNI,
//! event-driven waits, and recovery from interrupted dumps and lost events.
//!
//! Expectations come from what `ip` did, read back independently where it
//! matters (`ip -o link show`). No sleeps: every step waits for the event
//! or state it needs, with timeouts that only catch hangs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use metal_switchd::kernel::expect::{
    Attachment, KernelExpectations, MismatchKind, PortExpectation,
};
use metal_switchd::kernel::state::{KernelState, LinkKind, MgmtAddressError, PortEvent};
use metal_switchd::kernel::{KernelError, KernelView, ViewOptions};
use metal_switchd::observed::PortOperState::{self, Down, Unknown, Up};
use metal_switchd_lab::netns::Netns;
use tokio::sync::broadcast;

/// Generous: only catches hangs.
const WAIT: Duration = Duration::from_secs(20);

fn netns(tag: &str) -> Netns {
    Netns::new(tag).unwrap_or_else(|e| panic!("{e:#}"))
}

async fn view(ns: &Netns) -> KernelView {
    KernelView::start_in_netns(ns.path()).await.unwrap()
}

/// The next event for `port`, skipping other ports' events.
async fn next_event(rx: &mut broadcast::Receiver<PortEvent>, port: &str) -> PortEvent {
    let wait = async {
        loop {
            let e = rx.recv().await.expect("event stream");
            if e.port == port {
                return e;
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no oper-state event for {port} within {WAIT:?}"))
}

async fn expect_event(
    view: &KernelView,
    rx: &mut broadcast::Receiver<PortEvent>,
    port: &str,
    old: PortOperState,
    new: PortOperState,
    trace: &mut Vec<String>,
    t0: Instant,
) {
    let e = next_event(rx, port).await;
    trace.push(format!("{:>8.1?}  {e}", t0.elapsed()));
    assert_eq!(
        (e.old, e.new),
        (old, new),
        "{e}; trace:\n{}",
        trace.join("\n")
    );
    // The state is published before its events: it is at least this new.
    if new != Down {
        assert_ne!(view.oper_state(port), old, "{e}");
    }
}

/// A veth pair going down and up, then deleted and re-created: one event
/// per change, `Unknown` while the netdev is missing. The trace is printed
/// (`--no-capture`).
#[tokio::test]
async fn oper_state_events_for_a_veth_pair() {
    let ns = netns("ev");
    let view = view(&ns).await;
    let mut rx = view.port_events();
    let mut trace = Vec::new();
    let t0 = Instant::now();
    let p = "Ethernet0";
    assert_eq!(view.oper_state(p), Unknown);

    ns.ip("link add Ethernet0 type veth peer name Ethernet0p")
        .unwrap();
    expect_event(&view, &mut rx, p, Unknown, Down, &mut trace, t0).await;
    ns.ip("link set Ethernet0p up").unwrap();
    ns.ip("link set Ethernet0 up").unwrap();
    expect_event(&view, &mut rx, p, Down, Up, &mut trace, t0).await;

    // The port goes down and up (admin), as an operator would do it.
    trace.push(format!("{:>8.1?}  ip link set {p} down", t0.elapsed()));
    ns.ip("link set Ethernet0 down").unwrap();
    expect_event(&view, &mut rx, p, Up, Down, &mut trace, t0).await;
    trace.push(format!("{:>8.1?}  ip link set {p} up", t0.elapsed()));
    ns.ip("link set Ethernet0 up").unwrap();
    expect_event(&view, &mut rx, p, Down, Up, &mut trace, t0).await;

    // The peer loses carrier: the port is down without being touched.
    ns.ip("link set Ethernet0p down").unwrap();
    expect_event(&view, &mut rx, p, Up, Down, &mut trace, t0).await;
    ns.ip("link set Ethernet0p up").unwrap();
    expect_event(&view, &mut rx, p, Down, Up, &mut trace, t0).await;

    // Deleted: the kernel closes it (down), then unregisters it (Unknown).
    // Re-created: back.
    ns.ip("link del Ethernet0").unwrap();
    expect_event(&view, &mut rx, p, Up, Down, &mut trace, t0).await;
    expect_event(&view, &mut rx, p, Down, Unknown, &mut trace, t0).await;
    assert!(view.state().link(p).is_none());
    ns.ip("link add Ethernet0 type veth peer name Ethernet0p")
        .unwrap();
    expect_event(&view, &mut rx, p, Unknown, Down, &mut trace, t0).await;
    ns.ip("link set Ethernet0p up").unwrap();
    ns.ip("link set Ethernet0 up").unwrap();
    expect_event(&view, &mut rx, p, Down, Up, &mut trace, t0).await;
    assert_eq!(view.oper_state(p), Up);

    eprintln!(
        "port events of {p} as the kernel view saw them:\n{}",
        trace.join("\n")
    );
    let stats = view.stats();
    assert_eq!(stats.syncs, 1, "{stats:?}");
    assert_eq!(stats.overruns, 0, "{stats:?}");
}

/// The management address follows address changes (IPv4 before IPv6,
/// link-local ones never count), and the interface going away.
#[tokio::test]
async fn management_address_follows_address_changes() {
    let ns = netns("mgmt");
    ns.ip("link add mgmt0 type veth peer name mgmt0p").unwrap();
    let view = view(&ns).await;
    let addr = |v: &KernelView| v.management_address("mgmt0").map(|a| a.to_string());
    assert!(matches!(
        addr(&view),
        Err(KernelError::MgmtAddress(MgmtAddressError::NoAddress { .. }))
    ));
    let wait_addr = |want: &'static str| {
        let view = view.clone();
        async move {
            view.wait_for(WAIT, |s| {
                s.management_address("mgmt0")
                    .map(|a| a.to_string())
                    .ok()
                    .as_deref()
                    == Some(want)
            })
            .await
            .unwrap_or_else(|s| {
                panic!(
                    "management address never became {want}: {:?}",
                    s.management_address("mgmt0")
                )
            });
        }
    };

    ns.ip("addr add 169.254.7.7/16 dev mgmt0").unwrap();
    ns.ip("addr add 2001:db8::11/64 dev mgmt0 nodad").unwrap();
    wait_addr("2001:db8::11").await;
    ns.ip("addr add 10.99.0.11/24 dev mgmt0").unwrap();
    wait_addr("10.99.0.11").await;
    // Another subnet: deleting a primary address also deletes its
    // secondaries (promote_secondaries is off).
    ns.ip("addr add 10.99.1.12/24 dev mgmt0").unwrap();
    ns.ip("addr del 10.99.0.11/24 dev mgmt0").unwrap();
    wait_addr("10.99.1.12").await;
    ns.ip("addr del 10.99.1.12/24 dev mgmt0").unwrap();
    wait_addr("2001:db8::11").await;
    let s = view.state();
    let found: Vec<String> = s
        .addresses("mgmt0")
        .iter()
        .map(|a| format!("{}/{}", a.ip, a.prefix_len))
        .collect();
    assert!(found.contains(&"169.254.7.7/16".to_owned()), "{found:?}");

    ns.ip("link del mgmt0").unwrap();
    view.wait_for(WAIT, |s| s.link("mgmt0").is_none())
        .await
        .unwrap();
    let e = addr(&view).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(e.is_transient());
}

/// The view once `vtep-1001` carries `vni` and is in `br0`.
async fn vtep_in_br0(view: &KernelView, vni: u32) -> Arc<KernelState> {
    view.wait_for(WAIT, |s| {
        s.vxlan_devices().get("vtep-1001").map(|v| v.0) == Some(Some(vni))
            && s.master_of("vtep-1001") == Some("br0")
    })
    .await
    .unwrap_or_else(|s| {
        panic!(
            "vtep-1001 with VNI {vni} in br0 not seen: {:?}",
            s.vxlan_devices()
        )
    })
}

/// A VXLAN device's VNI and its bridge read back; a VNI cannot change in
/// place, so a device re-created with another VNI is seen as such.
#[tokio::test]
async fn vxlan_vni_and_bridge_read_back() {
    let ns = netns("vx");
    let view = view(&ns).await;
    ns.ip("link add br0 type bridge").unwrap();
    ns.ip("link add vtep-1001 type vxlan id 104009 local 10.0.0.11 nolearning dstport 4789")
        .unwrap();
    ns.ip("link set vtep-1001 master br0").unwrap();
    ns.ip("link set vtep-1001 up").unwrap();
    let s = vtep_in_br0(&view, 104009).await;
    assert!(matches!(
        s.link("br0").unwrap().kind,
        LinkKind::Bridge { .. }
    ));
    assert!(s.link("vtep-1001").unwrap().admin_up);

    // The kernel refuses to change a VNI in place.
    assert!(ns.ip("link set vtep-1001 type vxlan id 104010").is_err());
    ns.ip("link del vtep-1001").unwrap();
    ns.ip("link add vtep-1001 type vxlan id 104010 local 10.0.0.11 nolearning dstport 4789")
        .unwrap();
    ns.ip("link set vtep-1001 master br0").unwrap();
    let s = vtep_in_br0(&view, 104010).await;
    assert_eq!(s.vxlan_devices().len(), 1);
}

/// `wait_until` is woken by the kernel's events and, on timeout, names
/// what is still missing.
#[tokio::test]
async fn wait_until_reports_what_is_missing_and_passes_when_it_appears() {
    let ns = netns("wait");
    ns.ip("link add Ethernet120 type veth peer name Ethernet120p")
        .unwrap();
    let view = view(&ns).await;
    let exp = KernelExpectations {
        bridge: "Bridge".into(),
        vtep: "vtep".into(),
        vrfs: BTreeMap::new(),
        ports: [(
            "Ethernet120".to_owned(),
            PortExpectation {
                name: "Ethernet120".into(),
                mtu: 9216,
                admin: Some(metal_switchd::spec::AdminStatus::Up),
                attachment: Attachment::Routed,
            },
        )]
        .into(),
    };
    let e = view
        .wait_until(&exp, Duration::from_millis(200))
        .await
        .unwrap_err();
    let kinds: Vec<MismatchKind> = e.missing.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, [MismatchKind::PortMtu, MismatchKind::PortAdmin]);
    assert!(
        e.to_string().contains("expected mtu 9216, found mtu 1500"),
        "{e}"
    );
    assert!(e.to_string().contains("PORT|Ethernet120"), "{e}");

    let waiter = {
        let view = view.clone();
        let exp = exp.clone();
        tokio::spawn(async move { view.wait_until(&exp, WAIT).await })
    };
    ns.ip("link set Ethernet120 mtu 9216").unwrap();
    ns.ip("link set Ethernet120 up").unwrap();
    let s = waiter.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.link("Ethernet120").unwrap().mtu, Some(9216));
}

/// Churn: keep adding and deleting veth pairs while the view dumps.
struct Churn {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Churn {
    fn start(ns: &Netns, tag: &str, pairs: usize) -> Churn {
        let stop = Arc::new(AtomicBool::new(false));
        let name = ns.name().to_owned();
        let s = stop.clone();
        let tag = tag.to_owned();
        let thread = std::thread::spawn(move || {
            let mut batch = String::new();
            for i in 0..pairs {
                batch.push_str(&format!(
                    "link add {tag}{i} type veth peer name {tag}{i}p\n"
                ));
            }
            for i in 0..pairs {
                batch.push_str(&format!("link del {tag}{i}\n"));
            }
            while !s.load(Ordering::SeqCst) {
                support::process::output_with_stdin(
                    std::process::Command::new("ip").args(["-n", &name, "-force", "-batch", "-"]),
                    batch.as_bytes(),
                );
            }
        });
        Churn {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The view's links equal what `ip` lists, on an in-sync state.
async fn converges_to_ip_listing(ns: &Netns, view: &KernelView) {
    let want = ns.link_names().unwrap();
    view.wait_for(WAIT, |s| {
        let mut names: Vec<String> = s.links().map(|l| l.name.clone()).collect();
        names.sort();
        s.in_sync && names == want
    })
    .await
    .unwrap_or_else(|s| {
        let names: Vec<&str> = s.links().map(|l| l.name.as_str()).collect();
        panic!(
            "the view ({} links, in_sync {}) never matched ip's {} links: view {names:?}",
            names.len(),
            s.in_sync,
            want.len()
        )
    });
}

/// A link dump that the kernel marks NLM_F_DUMP_INTR (links added and
/// deleted while it runs) is repeated; the view ends up equal to the
/// kernel.
#[tokio::test]
async fn a_dump_interrupted_by_concurrent_changes_is_retried() {
    let ns = netns("intr");
    // Enough links that a dump takes several messages.
    let mut batch = String::new();
    for i in 0..120 {
        batch.push_str(&format!("link add s{i} type veth peer name s{i}p\n"));
    }
    ns.ip_batch(&batch).unwrap();
    let view = view(&ns).await;
    let churn = Churn::start(&ns, "c", 20);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut resyncs = 0;
    while view.stats().interrupted_dumps == 0 {
        assert!(
            Instant::now() < deadline,
            "no interrupted dump in {resyncs} resyncs under churn: {:?}",
            view.stats()
        );
        view.resync().await.unwrap();
        resyncs += 1;
    }
    drop(churn);
    converges_to_ip_listing(&ns, &view).await;
    let stats = view.stats();
    eprintln!("after {resyncs} resyncs under churn: {stats:?}");
    assert!(stats.interrupted_dumps > 0);
    assert_eq!(stats.reconnects, 0, "{stats:?}");
}

/// Events lost to a full socket buffer (ENOBUFS) are detected and
/// recovered by a redump. (Multi-threaded: the bursts block a thread while
/// the view reads on another.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_events_trigger_a_redump() {
    let ns = netns("lost");
    let view = KernelView::start_with(ViewOptions {
        netns: Some(ns.path()),
        // The smallest buffer the kernel allows: bursts overflow it.
        receive_buffer: 1,
        ..ViewOptions::default()
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut round = 0;
    while view.stats().overruns == 0 {
        assert!(
            Instant::now() < deadline,
            "no lost events after {round} bursts: {:?}",
            view.stats()
        );
        let mut batch = String::new();
        for i in 0..100 {
            batch.push_str(&format!(
                "link add b{round}x{i} type veth peer name b{round}x{i}p\n"
            ));
        }
        ns.ip_batch(&batch).unwrap();
        round += 1;
    }
    converges_to_ip_listing(&ns, &view).await;
    let stats = view.stats();
    eprintln!("after {round} bursts: {stats:?}");
    assert!(stats.syncs >= 2, "a redump after the overrun: {stats:?}");
}
