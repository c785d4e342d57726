//! Cost of judging a typical `docker run` create body, in the release profile:
//! `cargo bench -p stockade-policy --bench rules`. Measured separately: the Go-compatible parse
//! and schema check, the settings for the caller, and the rules. The target for the whole is
//! under 20 microseconds.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Instant;
use stockade_engine_api::{Request, Route};
use stockade_policy::rules::{decide, Context, ImageLookup};
use stockade_policy::{Policy, UserContext};

/// What the docker CLI 28 sends for `docker run --rm -v $HOME/src:/src busybox true`.
const CREATE: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["true"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":["/home/ann/src:/src"],"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[40,120],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":false,"PidsLimit":null,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}"#;

fn time<T>(what: &str, runs: u32, mut f: impl FnMut() -> T) {
    for _ in 0..runs / 10 {
        std::hint::black_box(f());
    }
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(f());
    }
    println!(
        "{what}: {:?} per call ({runs} runs)",
        start.elapsed() / runs
    );
}

fn main() {
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
    let ctx = Context {
        settings: &settings,
        protected: &protected,
        resolve: &resolve,
        catalog: None,
        images: &images,
        engine_pulls_filtered: false,
        caller: 1000,
        containers: &containers,
        socket_paths: &[],
        container_sockets: None,
        via_container: None,
        base_images: &[],
    };
    let request = Request::new(route.clone(), "name=x", CREATE.as_bytes()).unwrap();
    assert!(decide(&request, &ctx).allow);
    let runs = 20_000;
    time("parse + schema check + re-serialise", runs, || {
        Request::new(route.clone(), "name=x", CREATE.as_bytes())
            .unwrap()
            .body_bytes()
    });
    time("effective settings for the caller", runs, || {
        policy.effective(None, &who)
    });
    time("rules", runs, || decide(&request, &ctx));
    time("all three", runs, || {
        let request = Request::new(route.clone(), "name=x", CREATE.as_bytes()).unwrap();
        let settings = policy.effective(None, &who);
        let ctx = Context {
            settings: &settings,
            protected: &protected,
            resolve: &resolve,
            catalog: None,
            images: &images,
            engine_pulls_filtered: false,
            caller: 1000,
            containers: &containers,
            socket_paths: &[],
            container_sockets: None,
            via_container: None,
            base_images: &[],
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
    time("image reference + registry and image access", runs, || {
        let image = stockade_imageref::Reference::parse_normalized("bitnami/redis:7.2").unwrap();
        stockade_policy::access::access_allowed(&image, &settings, Some(&catalog)).is_ok()
    });
}
