//! Cost of judging a typical `docker run` create body, in the release profile:
//! `cargo bench -p stockade-policy --bench rules`. The target for the whole path is under 20
//! microseconds.
//!
//! `gateway path` is what the gateway does per create request between having the body bytes and
//! having the decision and the bytes it forwards (`crates/gateway/src/proxy.rs`): the Go-compatible
//! parse and schema check, the owner label, the facts to look up, the rules, the socket-mount
//! check and the re-serialisation. The caller's settings are cached by the gateway, so they are
//! computed once here; `all three` computes them per call too. The other lines time the parts.
//!
//! Each line is the median (and the fastest) of 15 batches. Arguments: a filter (only the lines
//! whose name contains it), `--runs N` per batch, and `--calls N` to make exactly N calls of the
//! chosen lines with no timing, for instruction counts that do not depend on the machine's load:
//! `valgrind --tool=callgrind target/release/deps/rules-HASH "gateway path" --calls 1000`, less the
//! same with `--calls 0`, over 1000.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stockade_engine_api::{Request, Route};
use stockade_policy::rules::{self, decide, Context, ImageLookup, SocketPlaces};
use stockade_policy::{Policy, UserContext};

/// What the docker CLI 28 sends for `docker run --rm -v $HOME/src:/src busybox true`.
const CREATE: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["true"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":["/home/ann/src:/src"],"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[40,120],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":false,"PidsLimit":null,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}"#;

const BATCHES: usize = 15;

struct Options {
    filter: Option<String>,
    runs: u32,
    /// Exact calls with no timing (for callgrind).
    calls: Option<u32>,
}

impl Options {
    fn from_args() -> Self {
        let mut options = Options {
            filter: None,
            runs: 2_000,
            calls: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--runs" => options.runs = args.next().unwrap().parse().unwrap(),
                "--calls" => options.calls = Some(args.next().unwrap().parse().unwrap()),
                // `cargo bench` adds `--bench`.
                a if a.starts_with("--") => {}
                a => options.filter = Some(a.to_owned()),
            }
        }
        options
    }

    fn time<T>(&self, what: &str, mut f: impl FnMut() -> T) {
        if self.filter.as_deref().is_some_and(|w| !what.contains(w)) {
            return;
        }
        if let Some(calls) = self.calls {
            for _ in 0..calls {
                std::hint::black_box(f());
            }
            return;
        }
        let runs = self.runs;
        for _ in 0..runs {
            std::hint::black_box(f());
        }
        let mut batches: Vec<Duration> = (0..BATCHES)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..runs {
                    std::hint::black_box(f());
                }
                start.elapsed() / runs
            })
            .collect();
        batches.sort();
        println!(
            "{what}: {:?} per call (median of {BATCHES} batches of {runs}; fastest {:?})",
            batches[BATCHES / 2],
            batches[0]
        );
    }
}

fn main() {
    let options = Options::from_args();
    let route = Route::parse(&http::Method::POST, "/v1.41/containers/create").unwrap();
    let policy = Policy::builtin();
    let who = UserContext::new(1000, "/home/ann");
    let settings = policy.effective(None, &who);
    let protected = [PathBuf::from("/run/stockade")];
    // No file system access: the gateway's resolver is `canonicalize`, one syscall per path.
    let resolve = |p: &Path| Some(p.to_path_buf());
    let images: std::collections::BTreeMap<String, ImageLookup> =
        [("busybox".to_owned(), ImageLookup::Missing)]
            .into_iter()
            .collect();
    let containers = std::collections::BTreeMap::new();
    let socket_paths = [PathBuf::from("/run/stockade/docker.sock")];
    let container_dir = PathBuf::from("/run/stockade/containers");
    let ctx = Context {
        settings: &settings,
        protected: &protected,
        resolve: &resolve,
        catalog: None,
        images: &images,
        engine_pulls_filtered: false,
        caller: 1000,
        containers: &containers,
        socket_paths: &socket_paths,
        container_sockets: Some(&container_dir),
        via_container: None,
        base_images: &[],
    };
    let places = SocketPlaces {
        paths: &socket_paths,
        container_dir: Some(&container_dir),
        resolve: &resolve,
    };
    let mut request = Request::new(route.clone(), "name=x", CREATE.as_bytes()).unwrap();
    rules::stamp_owner(&mut request, 1000).unwrap();
    assert!(decide(&request, &ctx).allow);

    // The gateway's steps for a create, in its order (proxy.rs), without its I/O: the facts it
    // would look up are the ones in `ctx`.
    let gateway_path = || {
        let mut checked = Request::new(route.clone(), "name=x", CREATE.as_bytes()).unwrap();
        rules::stamp_owner(&mut checked, 1000).unwrap();
        let wanted = (
            rules::images_to_look_up(&checked),
            rules::containers_to_look_up(&checked),
            rules::needs_base_images(&checked, &settings, &places),
        );
        let decision = decide(&checked, &ctx);
        assert!(decision.allow);
        assert!(!rules::has_socket_mounts(&checked, &places));
        (wanted, decision, checked.body_bytes().unwrap_or_default())
    };
    let (wanted, _, forwarded) = gateway_path();
    assert_eq!(wanted.0, ["busybox"]);
    assert!(wanted.1.is_empty() && !wanted.2);
    assert!(forwarded.ends_with(br#""Labels":{"io.stockade.owner":"1000"},"HostConfig":{"Binds":["/home/ann/src:/src"],"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[40,120],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":false,"PidsLimit":null,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}"#));

    options.time(
        "gateway path (body bytes to decision and forwarded bytes)",
        gateway_path,
    );
    options.time("parse + schema check + re-serialise", || {
        Request::new(route.clone(), "name=x", CREATE.as_bytes())
            .unwrap()
            .body_bytes()
    });
    options.time("Request::new (parse + schema check)", || {
        Request::new(route.clone(), "name=x", CREATE.as_bytes()).unwrap()
    });
    options.time("body_bytes (re-serialise)", || request.body_bytes());
    options.time("effective settings for the caller", || {
        policy.effective(None, &who)
    });
    options.time("rules", || decide(&request, &ctx));
    options.time("all three", || {
        let request = Request::new(route.clone(), "name=x", CREATE.as_bytes()).unwrap();
        let settings = policy.effective(None, &who);
        let ctx = Context {
            settings: &settings,
            ..ctx.clone()
        };
        (decide(&request, &ctx), request.body_bytes())
    });
    // Registry and image access for one reference: parse and normalise, then allow/deny (the
    // target is under 2 microseconds).
    let catalog = stockade_policy::catalog::Catalog::parse(
        "c.json",
        br#"{"catalogVersion": 1, "namespaces": {"bitnami": "verified-publisher"}}"#,
    )
    .unwrap();
    options.time("image reference + registry and image access", || {
        let image = stockade_imageref::Reference::parse_normalized("bitnami/redis:7.2").unwrap();
        stockade_policy::access::access_allowed(&image, &settings, Some(&catalog)).is_ok()
    });
}
