//! A fresh PostgreSQL database for one case of a bench, dropped when done (shared by the
//! lifecycle and API benches, each including this file).

/// A database `fw_bench_<what>_<pid>_<n>` on the server `admin` (a URL of any database there).
pub struct Database {
    admin: String,
    pub name: String,
    pub url: String,
}

impl Database {
    pub fn create(admin: &str, what: &str, n: usize) -> Database {
        let name = format!("fw_bench_{what}_{}_{n}", std::process::id());
        let mut client = postgres::Client::connect(admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the PostgreSQL server {admin}: {e}"));
        client.batch_execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE template0")).expect("create database");
        let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
        Database { admin: admin.to_string(), url: format!("{base}/{name}"), name }
    }

    /// Runs `sql` on the server (e.g. an `ALTER DATABASE` of this one); the lifecycle bench's.
    #[allow(dead_code)]
    pub fn admin(&self, sql: &str) {
        let mut client = postgres::Client::connect(&self.admin, postgres::NoTls).expect("connect");
        client.batch_execute(sql).expect(sql);
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name));
        }
    }
}
