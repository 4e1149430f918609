//! Benchmark: load, verify and extract 200 driver folders; validate 10,000 value sets.
//! Aims (issue 2): under 2 ms per driver and under 20 µs per validation. Run with
//! `cargo bench --bench drivers`; results are recorded in docs/benchmarks.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use formwork::driver::snapshot::Snapshot;
use formwork::driver::{Catalog, validate, verify};
use serde_json::{Value, json};

const DRIVERS: usize = 200;
const VALUE_SETS: usize = 10_000;
const ROUNDS: usize = 7;

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let builtin = tmp.path().join("drivers");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("drivers/sim");
    for i in 0..DRIVERS {
        copy_dir(&source, &builtin.join(format!("sim{i:03}")));
    }

    let verify_only = median(ROUNDS, || {
        let start = Instant::now();
        for i in 0..DRIVERS {
            verify::load(&builtin.join(format!("sim{i:03}"))).expect("the sim driver verifies");
        }
        start.elapsed()
    });
    let catalog_list = median(ROUNDS, || {
        let start = Instant::now();
        let catalog = Catalog::open(&builtin, &[], tmp.path().join("states")).expect("catalog");
        let loaded = catalog.list().expect("list");
        assert_eq!(loaded.len(), DRIVERS);
        start.elapsed()
    });
    report("verify::load of one folder", verify_only, DRIVERS);
    report("catalog open + list (discovery, states, load)", catalog_list, DRIVERS);

    // What every operation's first stage adds (issue 18): a snapshot of the driver folder and
    // the shared roles, hashed and encoded for the store, and its extraction on a machine that
    // lacks it.
    let roles = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/roles");
    let mut size = 0;
    let snapshot = median(ROUNDS, || {
        let start = Instant::now();
        for i in 0..DRIVERS {
            let taken = Snapshot::take("sim", &builtin.join(format!("sim{i:03}")), &roles).expect("snapshot");
            size = taken.encode().len();
        }
        start.elapsed()
    });
    report(&format!("snapshot take + encode of one driver and the roles ({size} bytes encoded)"), snapshot, DRIVERS);
    let taken = Snapshot::take("sim", &builtin.join("sim000"), &roles).expect("snapshot");
    let encoded = taken.encode();
    let extract = median(ROUNDS, || {
        let root = tempfile::tempdir().expect("temp dir");
        let start = Instant::now();
        for _ in 0..DRIVERS {
            let back = Snapshot::decode(&taken.digest, "sim", &encoded).expect("decode");
            let dir = back.extract(root.path()).expect("extract");
            std::fs::remove_dir_all(dir).expect("remove");
        }
        start.elapsed()
    });
    report("snapshot decode + extract on disk", extract, DRIVERS);

    let catalog = Catalog::open(&builtin, &[], tmp.path().join("states")).expect("catalog");
    let driver = catalog.usable("sim000").expect("usable");
    let deployment = driver.deployment(None).expect("one deployment");
    let inputs = driver.provision_inputs(deployment);
    let sets = value_sets(VALUE_SETS);
    let mut valid = 0;
    let validation = median(ROUNDS, || {
        valid = 0;
        let start = Instant::now();
        for values in &sets {
            if validate::validate(&inputs, values).is_ok() {
                valid += 1;
            }
        }
        start.elapsed()
    });
    report(&format!("validate one value set ({valid} of {VALUE_SETS} valid)"), validation, VALUE_SETS);
}

/// A mix of valid and invalid value sets touching every rule of the sim driver.
fn value_sets(n: usize) -> Vec<Value> {
    let regions = [
        ("eu-west", ["eu-west-1a", "eu-west-1b", "us-east-1a"]),
        ("us-east", ["us-east-1a", "us-east-1c", "eu-west-1b"]),
    ];
    let types = ["small", "medium", "large", "huge"];
    (0..n)
        .map(|i| {
            let (region, zones) = regions[i % 2];
            json!({
                "oneform_hosts": (i % 12) as u64,
                "instance_type": types[i % types.len()],
                "region": region,
                "zone": zones[i % 3],
                "cidr_block": if i % 5 == 0 { "10.0.0.0".to_string() } else { format!("10.{}.0.0/24", i % 250) },
                "oneform_public_ips": i % 7,
                "oneform_tags": {"team": format!("t{}", i % 10), "env": "bench"},
            })
        })
        .collect()
}

fn median(rounds: usize, mut run: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..rounds).map(|_| run()).collect();
    times.sort();
    times[rounds / 2]
}

fn report(what: &str, total: Duration, count: usize) {
    let each = total.as_secs_f64() / count as f64;
    println!(
        "{what}: {count} in {:.1} ms, {:.1} µs each (median of {ROUNDS} rounds)",
        total.as_secs_f64() * 1e3,
        each * 1e6
    );
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let dest: PathBuf = to.join(entry.path().strip_prefix(from).expect("prefix"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}
