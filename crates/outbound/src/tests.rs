//! The policy as callers use it: what `resolve_checked` and `check_url` refuse and say, the
//! allow list, this host's own addresses, and a real namespace whose host side is refused
//! while its far side is reachable. No test connects outside this machine; refused addresses
//! are refused before any connection.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::*;

fn policy(allow: &str) -> Policy {
    Policy::from_setting(allow).unwrap()
}

async fn refusal(host: &str, port: u16, policy: &Policy) -> String {
    match resolve_checked(host, port, policy).await {
        Ok(addresses) => panic!("{host}:{port} was allowed: {addresses:?}"),
        Err(refused) => {
            assert!(refused.is_policy(), "{host}: {refused}");
            refused.to_string()
        }
    }
}

#[tokio::test]
async fn refuses_this_server_and_its_link_and_says_why() {
    let default = Policy::default();
    let cases = [
        ("127.0.0.1", "host \"127.0.0.1\" is 127.0.0.1, a loopback address of this server"),
        // 127.0.0.1 or ::1, whichever the system resolver puts first.
        ("localhost", "a loopback address of this server"),
        ("[::1]", "host \"::1\" is ::1, a loopback address of this server"),
        ("0.0.0.0", "host \"0.0.0.0\" is 0.0.0.0, the unspecified address, which reaches this server"),
        ("::", "host \"::\" is ::, the unspecified address, which reaches this server"),
        (
            "169.254.169.254",
            "host \"169.254.169.254\" is 169.254.169.254, a link-local address (169.254.0.0/16 or fe80::/10, where cloud metadata services answer)",
        ),
        (
            "::ffff:127.0.0.1",
            "host \"::ffff:127.0.0.1\" is ::ffff:127.0.0.1, the IPv4-mapped form of 127.0.0.1, a loopback address of this server",
        ),
        (
            "64:ff9b::a9fe:a9fe",
            "host \"64:ff9b::a9fe:a9fe\" is 64:ff9b::a9fe:a9fe, the NAT64 form of 169.254.169.254, a link-local address",
        ),
        ("224.0.0.1", "is 224.0.0.1, a multicast address"),
        ("255.255.255.255", "is 255.255.255.255, the broadcast address"),
        // Numeric forms the system resolver reads as addresses.
        ("2130706433", "host \"2130706433\" resolves to 127.0.0.1, a loopback address"),
        ("0x7f.1", "resolves to 127.0.0.1, a loopback address"),
        ("127.1", "resolves to 127.0.0.1, a loopback address"),
        (
            "10.1.2.3",
            "host \"10.1.2.3\" is 10.1.2.3, an address in 10.0.0.0/8 (private network), which this server's operator has not opened to outbound connections",
        ),
        ("fd12::1", "an address in fc00::/7 (unique local network)"),
        ("100.64.0.1", "an address in 100.64.0.0/10 (carrier-grade NAT shared address space)"),
    ];
    for (host, expected) in cases {
        let message = refusal(host, 514, &default).await;
        assert!(
            message.starts_with(expected) || message.contains(expected),
            "{host}: {message}"
        );
    }
}

#[tokio::test]
async fn the_allow_list_opens_internal_networks_and_nothing_more() {
    let open = policy("10.0.0.0/8,192.168.1.5/32:514,fd00::/8");
    let allowed = resolve_checked("10.1.2.3", 6514, &open).await.unwrap();
    assert_eq!(allowed, ["10.1.2.3:6514".parse::<SocketAddr>().unwrap()]);
    resolve_checked("::ffff:10.1.2.3", 6514, &open)
        .await
        .unwrap();
    resolve_checked("[fd00::7]", 443, &open).await.unwrap();
    resolve_checked("192.168.1.5", 514, &open).await.unwrap();
    refusal("192.168.1.5", 515, &open).await;
    refusal("172.16.0.1", 514, &open).await;
    // Even 0.0.0.0/0 opens no "never" block.
    let everything = policy("0.0.0.0/0,::/0");
    for host in [
        "127.0.0.1",
        "localhost",
        "169.254.169.254",
        "::ffff:127.0.0.1",
        "fe80::1",
    ] {
        refusal(host, 514, &everything).await;
    }
    resolve_checked("10.1.2.3", 1, &everything).await.unwrap();
    // The internet needs no entry.
    resolve_checked("8.8.8.8", 514, &Policy::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn this_servers_own_addresses_are_refused_whatever_is_allowed() {
    let everything = policy("0.0.0.0/0,::/0");
    let own = own::read().unwrap();
    assert!(!own.is_empty());
    for cidr in own.iter() {
        let message = refusal(&cidr.network().to_string(), 80, &everything).await;
        if !matches!(classify(cidr.network()), Class::Never(_)) {
            assert!(message.ends_with("an address of this server"), "{message}");
        }
    }
}

#[tokio::test]
async fn a_name_with_any_refused_address_is_refused() {
    let policy = Policy::default().with_hosts([
        (
            "mixed.test".to_owned(),
            vec!["8.8.8.8".parse().unwrap(), "127.0.0.1".parse().unwrap()],
        ),
        (
            "Public.Test.".to_owned(),
            vec!["8.8.4.4".parse::<IpAddr>().unwrap()],
        ),
    ]);
    let message = refusal("mixed.test", 514, &policy).await;
    assert_eq!(
        message,
        "host \"mixed.test\" resolves to 127.0.0.1, a loopback address of this server"
    );
    let addresses = resolve_checked("public.test", 514, &policy).await.unwrap();
    assert_eq!(addresses, ["8.8.4.4:514".parse::<SocketAddr>().unwrap()]);
}

#[tokio::test]
async fn urls_are_checked_at_their_host_and_port() {
    let default = Policy::default();
    let refused = |url: &'static str| {
        let default = default.clone();
        async move {
            let refused = check_url(url, &default).await.expect_err(url);
            assert!(refused.is_policy(), "{url}: {refused}");
        }
    };
    refused("syslog://127.0.0.1:6379").await;
    refused("http://127.0.0.1:5000/internal/push/x").await;
    refused("https://localhost/logs").await;
    refused("syslog+tls://[::1]:6514").await;
    refused("https://[::ffff:127.0.0.1]/").await;
    refused("http://169.254.169.254/latest/meta-data/").await;
    refused("http://2130706433/").await;
    refused("syslog://0x7f.1:514").await;
    refused("git://10.0.0.1/repo.git").await;
    check_url("https://8.8.8.8/logs", &default).await.unwrap();
    check_url("https://10.1.2.3/logs", &policy("10.1.2.3:443"))
        .await
        .unwrap();
    check_url("https://10.1.2.3:8443/logs", &policy("10.1.2.3:443"))
        .await
        .expect_err("another port");
    let no_port = check_url("syslog://8.8.8.8", &default).await.unwrap_err();
    assert_eq!(no_port.to_string(), "\"syslog://8.8.8.8\" names no port");
    let no_url = check_url("logs", &default).await.unwrap_err();
    assert!(no_url.to_string().contains("is not a URL"), "{no_url}");
}

#[tokio::test]
async fn a_namespace_of_the_tests_own_is_reachable_and_its_host_side_is_not() {
    // Made before the namespace: the host side's address appears on this host afterwards,
    // and a later check reads it.
    let policy = policy(test_net::TEST_BLOCK);
    policy.own_addresses().unwrap();
    let net = test_net::TestNet::create().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match resolve_checked(&net.host.to_string(), 80, &policy).await {
            Err(refused) => {
                assert!(
                    refused.to_string().ends_with("an address of this server"),
                    "{refused}"
                );
                break;
            }
            Ok(_) => {
                assert!(Instant::now() < deadline, "{} was never refused", net.host);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let listener = net.listen(0).unwrap();
    let port = listener.local_addr().unwrap().port();
    let addresses = resolve_checked(&net.peer.to_string(), port, &policy)
        .await
        .unwrap();
    let stream = std::net::TcpStream::connect(addresses[0]).unwrap();
    let (_, from) = listener.accept().unwrap();
    assert_eq!(from.ip(), IpAddr::V4(net.host));
    drop(stream);
    let name = net.name().to_owned();
    drop(net);
    let listed = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&name));
}
