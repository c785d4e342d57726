//! The nftables table on the real `nft`: created, replaced atomically, listed and removed,
//! without touching any other table. Needs root and nftables; skipped otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod netns;

use std::collections::BTreeSet;
use std::process::Command;

use stockade_egress::nft::{self, Bridge, NftConfig, NftError, Ports};

fn list_other(name: &str) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "inet", name])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_table_is_ours_alone_and_replaced_atomically() {
    if !netns::supported() {
        return;
    }
    let id = std::process::id();
    let mut net = netns::Net::default();
    // Someone else's table, which must come out unchanged.
    let other = format!("sktestother{id}");
    netns::run(&format!("nft add table inet {other}"));
    net.table(&other);
    netns::run(&format!(
        "nft add chain inet {other} c {{ type filter hook forward priority 0 ; }}"
    ));
    let before = list_other(&other);

    let ours = format!("sktestnft{id}");
    net.table(&ours);
    let bridge = |name: &str, subnet: &str| Bridge {
        interface: name.to_owned(),
        subnets: vec![subnet.parse().unwrap()],
    };
    let mut config = NftConfig::new(15001);
    config.table.clone_from(&ours);
    config.bridges = vec![bridge("skbra", "10.240.1.0/24")];
    nft::apply(&config).unwrap();
    config.bridges.push(bridge("skbrb", "fd00:240:2::/64"));
    config.ports = Ports::Some(BTreeSet::from([80, 443, 8443]));
    config.dns = vec!["10.240.1.1".parse().unwrap()];
    nft::apply(&config).unwrap();
    let listed = nft::list(&ours).unwrap();
    assert!(
        listed.contains("\"skbra\"") && listed.contains("\"skbrb\""),
        "{listed}"
    );
    assert!(listed.contains("8443"), "{listed}");
    // A network went away: the new table has only the remaining bridge.
    config.bridges.remove(0);
    nft::apply(&config).unwrap();
    let listed = nft::list(&ours).unwrap();
    assert!(
        !listed.contains("\"skbra\"") && listed.contains("\"skbrb\""),
        "{listed}"
    );
    // Every transparent port: no port match in the redirect.
    config.ports = Ports::All;
    nft::apply(&config).unwrap();
    assert!(!nft::list(&ours).unwrap().contains("dport { 80"));

    nft::remove(&ours).unwrap();
    // Removing twice is fine (stop after a failed start).
    nft::remove(&ours).unwrap();
    match nft::list(&ours) {
        Err(NftError::Failed { output, .. }) => assert!(!output.is_empty()),
        other => panic!("expected an nft failure with its output, got {other:?}"),
    }
    assert_eq!(list_other(&other), before);
    drop(net);
}
