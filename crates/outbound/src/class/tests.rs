//! Classification: a table of addresses and what they are, and property tests that every
//! address of a refused block, in every IPv6 form that carries it, is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn check(address: &str, expected: &str) {
    let ip: IpAddr = address.parse().unwrap();
    let got = match classify(ip) {
        Class::Public => "public".to_owned(),
        Class::Never(never) => format!("never {never:?}"),
        Class::Internal(range) => format!("internal {}", range.cidr),
    };
    assert_eq!(got, expected, "{address}");
}

#[test]
fn addresses_and_what_they_are() {
    check("127.0.0.1", "never Loopback");
    check("127.255.255.254", "never Loopback");
    check("::1", "never Loopback");
    check("0.0.0.0", "never Unspecified");
    check("::", "never Unspecified");
    check("0.1.2.3", "never ThisNetwork");
    check("169.254.169.254", "never LinkLocal");
    check("fe80::1", "never LinkLocal");
    check("febf:ffff::1", "never LinkLocal");
    check("224.0.0.1", "never Multicast");
    check("239.255.255.250", "never Multicast");
    check("ff02::1", "never Multicast");
    check("255.255.255.255", "never Broadcast");
    check("10.1.2.3", "internal 10.0.0.0/8");
    check("172.16.0.1", "internal 172.16.0.0/12");
    check("172.31.255.255", "internal 172.16.0.0/12");
    check("192.168.1.1", "internal 192.168.0.0/16");
    check("100.64.0.1", "internal 100.64.0.0/10");
    check("100.127.255.255", "internal 100.64.0.0/10");
    check("198.18.0.1", "internal 198.18.0.0/15");
    check("198.19.255.255", "internal 198.18.0.0/15");
    check("192.0.0.8", "internal 192.0.0.0/24");
    check("192.0.2.2", "internal 192.0.2.0/24");
    check("240.0.0.1", "internal 240.0.0.0/4");
    check("fd00::2", "internal fc00::/7");
    check("fc00::1", "internal fc00::/7");
    check("fec0::1", "internal fec0::/10");
    check("64:ff9b:1::a00:1", "internal 64:ff9b:1::/48");
    check("2001::1", "internal 2001::/23");
    check("2001:db8::1", "internal 2001:db8::/32");
    check("100::1", "internal 100::/64");
    check("4000::1", "internal ::/0");
    // IPv4 carried in IPv6 forms is judged as the IPv4 address it reaches.
    check("::ffff:127.0.0.1", "never Loopback");
    check("::ffff:169.254.169.254", "never LinkLocal");
    check("::ffff:0.0.0.0", "never Unspecified");
    check("::127.0.0.1", "never Loopback");
    check("64:ff9b::7f00:1", "never Loopback");
    check("64:ff9b::a9fe:a9fe", "never LinkLocal");
    check("2002:7f00:1::1", "never Loopback");
    check("2002:a9fe:a9fe::", "never LinkLocal");
    check("::ffff:10.0.0.1", "internal 10.0.0.0/8");
    check("2002:c0a8:101::1", "internal 192.168.0.0/16");
    // The internet.
    check("8.8.8.8", "public");
    check("1.1.1.1", "public");
    check("172.32.0.1", "public");
    check("100.128.0.1", "public");
    check("169.255.0.1", "public");
    check("::ffff:8.8.8.8", "public");
    check("64:ff9b::808:808", "public");
    check("2002:808:808::1", "public");
    check("2606:4700:4700::1111", "public");
    check("2a00:1450:4001::200e", "public");
}

/// The IPv6 forms that carry `v4`.
fn forms(v4: Ipv4Addr) -> Vec<Ipv6Addr> {
    let bits = u128::from(u32::from(v4));
    vec![
        v4.to_ipv6_mapped(),
        Ipv6Addr::from(0x0064_ff9b_0000_0000_0000_0000_0000_0000 | bits),
        Ipv6Addr::from((0x2002u128 << 112) | (bits << 80) | 0x1234),
    ]
}

fn in_block(cidr: Cidr, host: u128) -> IpAddr {
    match cidr.network() {
        IpAddr::V4(network) => {
            let mask = u32::MAX.checked_shr(u32::from(cidr.prefix())).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(network) | (host as u32 & mask)))
        }
        IpAddr::V6(network) => {
            let mask = u128::MAX.checked_shr(u32::from(cidr.prefix())).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(network) | (host & mask)))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_address_of_a_never_block_is_never(index in 0..NEVER_V4.len() + NEVER_V6.len(), host: u128) {
        let (cidr, never) = NEVER_V4.iter().chain(NEVER_V6).nth(index).unwrap();
        let address = in_block(*cidr, host);
        prop_assert!(cidr.contains(address));
        // A more specific block may name it differently (0.0.0.0 in 0.0.0.0/8): never all the same.
        prop_assert!(matches!(classify(address), Class::Never(_)), "{address}: {:?} ({never:?})", classify(address));
        if let IpAddr::V4(v4) = address {
            for form in forms(v4) {
                prop_assert!(matches!(classify(IpAddr::V6(form)), Class::Never(_)), "{form}");
            }
        }
    }

    #[test]
    fn every_address_of_an_internal_block_is_refused_by_default(index in 0..INTERNAL_V4.len() + INTERNAL_V6.len(), host: u128) {
        let range = INTERNAL_V4.iter().chain(INTERNAL_V6).nth(index).unwrap();
        let address = in_block(range.cidr, host);
        prop_assert!(range.cidr.contains(address));
        prop_assert_eq!(classify(address), Class::Internal(*range), "{}", address);
        if let IpAddr::V4(v4) = address {
            for form in forms(v4) {
                prop_assert_eq!(classify(IpAddr::V6(form)), Class::Internal(*range), "{}", form);
            }
        }
    }

    #[test]
    fn an_embedded_address_is_judged_as_itself(v4: u32) {
        let v4 = Ipv4Addr::from(v4);
        for form in forms(v4) {
            prop_assert_eq!(classify(IpAddr::V6(form)), classify(IpAddr::V4(v4)), "{}", form);
        }
    }

    #[test]
    fn ipv6_outside_global_unicast_is_never_public(bits: u128) {
        let address = Ipv6Addr::from(bits);
        if !GLOBAL_UNICAST.contains(IpAddr::V6(address)) && embedded_ipv4(address).is_none() {
            prop_assert!(classify(IpAddr::V6(address)) != Class::Public, "{address}");
        }
    }
}
