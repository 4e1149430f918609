//! tests/common/postgres.rs: each fresh database is new, empty and apart from the others, also
//! when many threads ask at once, and drop_database removes one.

mod common;

use std::collections::HashSet;

use common::postgres::{drop_database, fresh_database};
use postgres::{Client, NoTls};

fn connect(url: &str) -> Client {
    Client::connect(url, NoTls).unwrap_or_else(|e| panic!("{url}: {e:?}"))
}

fn tables(client: &mut Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", &[])
        .unwrap()
        .get(0)
}

#[test]
fn fresh_databases_are_empty_and_apart() {
    let (a, b) = (fresh_database(), fresh_database());
    assert_ne!(a, b);
    let (mut in_a, mut in_b) = (connect(&a), connect(&b));
    let name: String = in_a.query_one("SELECT current_database()", &[]).unwrap().get(0);
    assert!(a.ends_with(&format!("/{name}")) && name.starts_with("fw_"), "{a} is not {name}");
    assert_eq!((tables(&mut in_a), tables(&mut in_b)), (0, 0));

    in_a.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)").unwrap();
    assert_eq!(tables(&mut in_a), 1);
    assert_eq!(tables(&mut in_b), 0);
    let err = in_b.query("SELECT x FROM t", &[]).unwrap_err();
    assert_eq!(err.code(), Some(&postgres::error::SqlState::UNDEFINED_TABLE), "{err:?}");

    drop(in_a);
    drop_database(&a);
    assert!(Client::connect(&a, NoTls).is_err(), "{a} is still there after drop_database");
    drop(in_b);
    drop_database(&b);
}

#[test]
fn fresh_database_from_eight_threads_at_once() {
    let urls: Vec<String> = std::thread::scope(|s| {
        (0..8).map(|_| s.spawn(fresh_database)).collect::<Vec<_>>().into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(urls.iter().collect::<HashSet<_>>().len(), 8, "{urls:?}");
    for url in &urls {
        assert_eq!(tables(&mut connect(url)), 0, "{url}");
        drop_database(url);
    }
}
