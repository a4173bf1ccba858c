//! TLS to PostgreSQL (issue 19): with `sslmode=require` in the URL, lapd's connections are
//! encrypted (the server's own `pg_stat_ssl` says so) and the server's certificate is checked
//! against the given CA; without it they stay plain, as before; a server whose certificate no
//! trusted CA signed is refused, and so is a root certificate file that is not one.

use std::net::TcpListener;

use lapd::store::SeatStore;
use lapd::store::postgres::PostgresStore;
use lapd::test_util::TempPostgres;

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn sslmode_require_encrypts_and_checks_the_servers_certificate() {
    let server = TempPostgres::start_tls(free_tcp_port());
    let name = {
        let mut admin = postgres::Client::connect(&server.url("postgres"), postgres::NoTls)
            .expect("admin connection");
        admin
            .batch_execute("CREATE DATABASE lapd_tls")
            .expect("database");
        "lapd_tls"
    };
    let url = server.tls_url(name);

    // Trusting the server's CA: the store opens, works, and its connection is encrypted.
    let store = PostgresStore::open_with(&url, Some(&server.ca_file())).expect("opens over TLS");
    assert_eq!(store.seat_count().expect("a query"), 0);
    let mut admin = postgres::Client::connect(&server.url("postgres"), postgres::NoTls)
        .expect("admin connection");
    let encrypted: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = 'lapd' AND s.ssl",
            &[],
        )
        .expect("pg_stat_ssl")
        .get(0);
    assert!(encrypted >= 1, "lapd's connection is not encrypted");

    // Without sslmode=require the connection stays plain, as before TLS was supported.
    let plain = PostgresStore::open_with(&url.replace("?sslmode=require", ""), None)
        .expect("opens without TLS");
    assert_eq!(plain.seat_count().expect("a query"), 0);
    let unencrypted: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = 'lapd' AND NOT s.ssl",
            &[],
        )
        .expect("pg_stat_ssl")
        .get(0);
    assert!(unencrypted >= 1, "the plain connection is missing");
    // As libpq, a plain connection reads no root certificate (nor the system's store).
    let not_pem = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(not_pem.path(), "not a certificate").expect("write");
    PostgresStore::open_with(&url.replace("?sslmode=require", ""), Some(not_pem.path()))
        .expect("a plain connection ignores the root certificate");

    // Without the CA, the system's store does not know this server: refused, not downgraded.
    let error = PostgresStore::open_with(&url, None).expect_err("an unknown CA");
    let chain = format!("{error} / {:?}", std::error::Error::source(&error));
    assert!(chain.contains("certificate"), "{chain}");

    // A root certificate file that is not one is said as such.
    let error = PostgresStore::open_with(&url, Some(not_pem.path())).expect_err("not PEM");
    assert!(
        error.to_string().contains("not a PEM certificate"),
        "{error}"
    );
}
