//! Two instances on one PostgreSQL under one load generator (issue 14): the scenario of
//! `examples/two_instances.rs` (this test compiles that very file), run briefly against the
//! binary under test with cheap password hashing. It passes when every answer of the mixed
//! workload was the expected one, every confirmation and reset mail was delivered exactly once
//! through the shared outbox (none twice, none lost), and the failed-login limit held across
//! both instances. The figures it prints mean nothing here: the README's come from the example,
//! in release.

#[allow(dead_code)]
#[path = "../../examples/two_instances.rs"]
mod scenario;

use crate::support::process::BIN;

test_support::postgres_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mail_once_and_shared_limits_under_mixed_load() {
        let database = test_support::PostgresDatabase::create().await;
        let report = scenario::run(&scenario::Scenario {
            bin: BIN.into(),
            database_url: database.url().to_owned(),
            seconds: 2,
            connections: 4,
            users: 10,
            env: [
                ("TESSERA_PASSWORD_HASHING__MEMORY_KIB", "1024"),
                ("TESSERA_PASSWORD_HASHING__ITERATIONS", "1"),
            ]
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .to_vec(),
        })
        .await;
        println!("{report}");
        assert!(report.passed(), "{report}");
    }
}
