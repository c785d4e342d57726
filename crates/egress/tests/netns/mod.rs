//! Test support: a small network made of real network namespaces, veth pairs and a Linux
//! bridge, created with `ip` and removed (by the names recorded here) when the guard drops,
//! even when the test fails. Code runs inside a namespace on a fresh thread that `setns`es
//! into it; sockets made there stay in that namespace when handed back.

#![allow(dead_code, clippy::print_stderr)]

use std::os::fd::AsFd;
use std::process::Command;

/// Whether this host can run the tests (root, `ip` and `nft`); prints why not.
pub fn supported() -> bool {
    let root = rustix::process::geteuid().is_root();
    let tools = ["ip", "nft"].iter().all(|t| {
        Command::new(t)
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !(root && tools) {
        eprintln!("skipped: needs root and the iproute2 and nftables packages");
    }
    root && tools
}

/// Runs `cmd` and panics with its output on failure.
pub fn run(cmd: &str) {
    let parts: Vec<&str> = cmd.split_whitespace().collect();
    let out = Command::new(parts[0])
        .args(&parts[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Everything created, removed on drop in reverse order.
#[derive(Default)]
pub struct Net {
    namespaces: Vec<String>,
    links: Vec<String>,
    tables: Vec<String>,
}

impl Net {
    /// `ip netns add NAME`, recorded for removal.
    pub fn netns(&mut self, name: &str) {
        run(&format!("ip netns add {name}"));
        self.namespaces.push(name.to_owned());
        run(&format!("ip -n {name} link set lo up"));
    }

    /// Records a link of the root namespace to delete.
    pub fn link(&mut self, name: &str) {
        self.links.push(name.to_owned());
    }

    /// Records an nftables table (inet) to delete.
    pub fn table(&mut self, name: &str) {
        self.tables.push(name.to_owned());
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for t in self.tables.drain(..).rev() {
            let _ = Command::new("nft")
                .args(["delete", "table", "inet", &t])
                .output();
        }
        for l in self.links.drain(..).rev() {
            let _ = Command::new("ip").args(["link", "del", &l]).output();
        }
        for n in self.namespaces.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "del", &n]).output();
        }
    }
}

/// Runs `f` on a new thread inside network namespace `ns`.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// IPv4 forwarding on for as long as this lives, restored to what it was on drop (even when
/// the test fails). The routed controls need it; whatever ran on the host before may have
/// left it off.
pub struct Forwarding(String);

impl Forwarding {
    const PATH: &'static str = "/proc/sys/net/ipv4/ip_forward";

    /// Turns IPv4 forwarding on.
    pub fn on() -> Self {
        let before = std::fs::read_to_string(Self::PATH).expect("read ip_forward");
        std::fs::write(Self::PATH, "1").expect("write ip_forward");
        Self(before.trim().to_owned())
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, &self.0);
    }
}
