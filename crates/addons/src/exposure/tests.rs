//! The pure parts of the probes: where dynos reach a server, the startup message, how answers
//! are classified, what the operator is told, and when provisioning is refused.

use super::*;

const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);

fn network() -> DynoNetwork {
    DynoNetwork {
        gateway: GATEWAY,
        subnet: (Ipv4Addr::new(198, 19, 0, 0), 16),
    }
}

fn server(protocol: Protocol, address: &str) -> AddonServer {
    AddonServer {
        protocol,
        address: address.parse().expect("a socket address"),
    }
}

#[test]
fn loopback_servers_are_reached_at_the_gateway() {
    let check = |admin: &str, expected: &str| {
        let admin: IpAddr = admin.parse().expect("an address");
        assert_eq!(
            dyno_address(admin, GATEWAY).to_string(),
            expected,
            "{admin}"
        );
    };
    check("127.0.0.1", "198.19.0.1");
    check("127.1.2.3", "198.19.0.1");
    check("::1", "198.19.0.1");
    check("10.0.0.5", "10.0.0.5");
    check("198.19.0.1", "198.19.0.1");
    check("2001:db8::5", "2001:db8::5");
}

#[test]
fn the_startup_message_asks_for_postgres_on_postgres_in_protocol_3() {
    let message = postgres_startup();
    let length = i32::from_be_bytes([message[0], message[1], message[2], message[3]]);
    assert_eq!(usize::try_from(length).expect("positive"), message.len());
    assert_eq!(&message[4..8], &[0, 3, 0, 0]);
    assert_eq!(
        &message[8..],
        b"user\0postgres\0database\0postgres\0application_name\0wharf-probe\0\0"
    );
}

#[test]
fn postgres_answers() {
    let check = |kind: u8, body: &[u8], expected: PostgresReply| {
        assert_eq!(parse_postgres_reply(kind, body), expected);
    };
    check(b'R', &[0, 0, 0, 0], PostgresReply::Authentication(0));
    check(
        b'R',
        &[0, 0, 0, 10, b'S', b'C', b'R', b'A', b'M', 0, 0],
        PostgresReply::Authentication(10),
    );
    check(
        b'E',
        b"SFATAL\0VFATAL\0C28000\0Mno pg_hba.conf entry for host \"198.19.0.1\"\0Fauth.c\0\0",
        PostgresReply::Error {
            code: "28000".into(),
            message: "no pg_hba.conf entry for host \"198.19.0.1\"".into(),
        },
    );
    // A cut field list still gives what it holds.
    check(
        b'E',
        b"C57P03\0Mthe database system is starting up",
        PostgresReply::Error {
            code: "57P03".into(),
            message: "the database system is starting up".into(),
        },
    );
    check(b'R', &[0, 0], PostgresReply::Other(b'R'));
    check(b'N', b"", PostgresReply::Other(b'N'));
}

#[test]
fn postgres_classification() {
    let check = |reply: PostgresReply, expected: &str| {
        assert_eq!(
            classify_postgres(&reply).access.state(),
            expected,
            "{reply:?}"
        );
    };
    check(PostgresReply::Authentication(0), "open");
    for asks in [3, 5, 7, 10] {
        check(PostgresReply::Authentication(asks), "password_required");
    }
    let hba = PostgresReply::Error {
        code: "28000".into(),
        message: "pg_hba.conf rejects connection".into(),
    };
    check(hba.clone(), "password_required");
    assert_eq!(
        classify_postgres(&hba).refusal.as_deref(),
        Some("pg_hba.conf rejects connection")
    );
    check(
        PostgresReply::Error {
            code: "53300".into(),
            message: "sorry, too many clients already".into(),
        },
        "unreachable",
    );
    check(PostgresReply::Other(b'X'), "unreachable");
}

#[test]
fn redis_classification() {
    let check = |reply: Reply, expected: &str| {
        assert_eq!(classify_redis(&reply).access.state(), expected, "{reply:?}");
    };
    check(Reply::Status("PONG".into()), "open");
    check(
        Reply::Error("NOPERM this user has no permissions to run the 'ping' command".into()),
        "open",
    );
    check(
        Reply::Error("NOAUTH Authentication required.".into()),
        "password_required",
    );
    check(
        Reply::Error("WRONGPASS invalid username-password pair".into()),
        "password_required",
    );
    check(
        Reply::Error("DENIED Redis is running in protected mode".into()),
        "password_required",
    );
    check(
        Reply::Error("LOADING Redis is loading the dataset in memory".into()),
        "unreachable",
    );
    check(Reply::Integer(1), "unreachable");
}

#[test]
fn what_the_operator_is_told() {
    let check = |server: AddonServer, access: DynoAccess, refusal: Option<&str>, expected: &str| {
        let finding = Finding {
            access,
            refusal: refusal.map(str::to_owned),
        };
        assert_eq!(describe(server, &network(), &finding), expected);
    };
    let postgres = server(Protocol::Postgres, "198.19.0.1:5432");
    let redis = server(Protocol::Redis, "198.19.0.1:6379");
    check(
        postgres,
        DynoAccess::PasswordRequired,
        None,
        "dynos reach PostgreSQL at 198.19.0.1:5432 and must give a password",
    );
    check(
        postgres,
        DynoAccess::Open,
        None,
        "dynos reach PostgreSQL at 198.19.0.1:5432 and log in as postgres WITHOUT a password \
         (pg_hba.conf trusts the dyno network): put `host all all 198.19.0.0/16 scram-sha-256` \
         in pg_hba.conf above any line that trusts these addresses, and reload PostgreSQL",
    );
    check(
        postgres,
        DynoAccess::PasswordRequired,
        Some("no pg_hba.conf entry"),
        "dynos reach PostgreSQL at 198.19.0.1:5432, which turns user postgres away without \
         asking for a password (no pg_hba.conf entry); apps log in with their own roles, which \
         need `host all all 198.19.0.0/16 scram-sha-256` in pg_hba.conf",
    );
    check(
        postgres,
        DynoAccess::Unreachable("connection refused".into()),
        None,
        "dynos cannot reach PostgreSQL at 198.19.0.1:5432 (connection refused): make \
         PostgreSQL listen there too: add 198.19.0.1 to listen_addresses and restart it",
    );
    check(
        redis,
        DynoAccess::Open,
        None,
        "dynos reach Redis at 198.19.0.1:6379 and use it as its default user WITHOUT a \
         password: give the default user a password (`requirepass`, or `ACL SETUSER default \
         on >PASSWORD`) and put it in WHARF_ADDON_REDIS_URL",
    );
    check(
        redis,
        DynoAccess::Unreachable("no answer within 2 s".into()),
        None,
        "dynos cannot reach Redis at 198.19.0.1:6379 (no answer within 2 s): make Redis listen \
         there too: add 198.19.0.1 to bind and restart it",
    );
    check(
        server(Protocol::Redis, "10.0.0.5:6379"),
        DynoAccess::Unreachable("connection refused".into()),
        None,
        "dynos cannot reach Redis at 10.0.0.5:6379 (connection refused): check that Redis \
         listens on 10.0.0.5:6379 and that this host reaches it",
    );
}

#[test]
fn only_open_servers_are_refused_unless_the_operator_accepts_the_risk() {
    let report = |access: DynoAccess| Report {
        server: server(Protocol::Postgres, "198.19.0.1:5432"),
        access,
        message: "what the probe found".into(),
    };
    let open = report(DynoAccess::Open);
    let refusal = provisioning_refusal("wharf-postgresql", &open, false).expect("refused");
    assert!(refusal.contains("what the probe found"), "{refusal}");
    assert!(
        refusal.contains("WHARF_ADDONS_ALLOW_OPEN_SERVERS=true"),
        "{refusal}"
    );
    assert_eq!(provisioning_refusal("wharf-postgresql", &open, true), None);
    for access in [
        DynoAccess::PasswordRequired,
        DynoAccess::Unreachable("connection refused".into()),
    ] {
        assert_eq!(
            provisioning_refusal("wharf-postgresql", &report(access), false),
            None
        );
    }
}
