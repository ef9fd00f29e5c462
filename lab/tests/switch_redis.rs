//! A switch-sized redis for benchmarks and the lab (`switch_redis`): the
//! data goes into a real redis, a redis file of it starts other servers
//! with the same data, a plain restart of such a server is empty again (as
//! SONiC's database container restarts without persistence), and the file
//! goes when its owner does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use metal_switchd_lab::redis_server::{APPL_DB, ASIC_DB, COUNTERS_DB, RedisServer};
use metal_switchd_lab::switch_redis::{Filled, SwitchData, SwitchSize, fill};

fn dbsize(server: &RedisServer, db: i64) -> usize {
    let mut c = server.connection(db).unwrap();
    redis::cmd("DBSIZE").query(&mut c).unwrap()
}

fn sizes(server: &RedisServer) -> Filled {
    Filled {
        appl_keys: dbsize(server, APPL_DB),
        asic_keys: dbsize(server, ASIC_DB),
        counters_keys: dbsize(server, COUNTERS_DB),
    }
}

#[test]
fn a_switch_sized_redis_is_filled_saved_and_loaded() {
    let size = SwitchSize {
        routes: 2_000,
        asic_keys: 6_000,
        vrfs: 4,
    };
    let ports: Vec<String> = (0..16).map(|i| format!("Ethernet{i}")).collect();

    // fill: every key it counts is in redis.
    let direct = RedisServer::start().unwrap();
    let filled = fill(&direct, &size, &ports).unwrap();
    assert_eq!(sizes(&direct), filled);
    assert_eq!(
        filled.asic_keys,
        size.asic_keys + 2,
        "and syncd's two id maps"
    );
    assert_eq!(filled.counters_keys, ports.len());
    let mut c = direct.connection(COUNTERS_DB).unwrap();
    let counters: Vec<String> = redis::cmd("HKEYS")
        .arg("COUNTERS:oid:0x1000000000001")
        .query(&mut c)
        .unwrap();
    assert!(counters.iter().any(|f| f == "SAI_PORT_STAT_IF_IN_OCTETS"));

    // A redis file of it: made once per port list, loaded by new servers.
    let data = SwitchData::new(size.clone());
    let file = data.file(&ports).unwrap();
    assert_eq!(data.file(&ports).unwrap(), file, "made once");
    let mut loaded = RedisServer::start_with_data(&file).unwrap();
    assert_eq!(sizes(&loaded), filled);
    let other = data.file(&ports[..4]).unwrap();
    assert_ne!(other, file);
    assert_eq!(
        sizes(&RedisServer::start_with_data(&other).unwrap()).counters_keys,
        4
    );

    // A restart without data is empty; with data, full again.
    loaded.restart().unwrap();
    assert_eq!(sizes(&loaded), Filled::default());
    loaded.restart_with_data(&file).unwrap();
    assert_eq!(sizes(&loaded), filled);

    // The files go with their owner.
    drop(data);
    assert!(!file.exists(), "{} left behind", file.display());
    assert!(!other.exists(), "{} left behind", other.display());
}
