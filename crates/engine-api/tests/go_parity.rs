//! Differential test against the engine's own Go decoders (Debian's
//! `golang-github-docker-docker-dev`, the Docker 20.10 sources, built with Debian's `golang-go`):
//! for every body the gateway accepts, the engine must read the raw body and the canonical body
//! the gateway forwards as the same value. Bodies come from seeds the docker CLI sends and attack
//! bodies, mutated the ways a bypass would try (key case, Unicode folding, `\u` escapes,
//! duplicates, nulls, unknown and misplaced fields, wrong number forms).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use stockade_engine_api::json::{self, Value};
use stockade_engine_api::schema::{self, Ty};

const SEEDS_CREATE: &[&str] = &[
    r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["true"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":false,"PidsLimit":null,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}"#,
    r#"{"Image":"x","HostConfig":{"Privileged":true,"CapAdd":["SYS_ADMIN"],"Binds":["/:/host"],"PidMode":"host","SecurityOpt":["seccomp=unconfined"],"Sysctls":{"kernel.core_pattern":"|/x"}}}"#,
    r#"{"Image":"x","Cmd":"sh","Entrypoint":["a","b"],"Healthcheck":{"Test":["CMD","true"],"Interval":1000000000,"Retries":3},"ExposedPorts":{"80/tcp":{}},"StopTimeout":5,"HostConfig":{"Mounts":[{"Type":"bind","Source":"/etc","Target":"/e","ReadOnly":true,"BindOptions":{"Propagation":"rshared"}},{"Type":"volume","Target":"/v","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"o":"bind","device":"/","type":"none"}}}}],"Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}],"Ulimits":[{"Name":"nofile","Hard":10,"Soft":5}],"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]},"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2},"MemorySwappiness":10,"OomKillDisable":true,"PidsLimit":100,"KernelMemory":1}}"#,
    r#"{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"host":{"Aliases":["a"],"IPAMConfig":{"IPv4Address":"10.0.0.2"}}}},"HostConfig":{"NetworkMode":"container:abc","IpcMode":"host","UTSMode":"host","UsernsMode":"host","CgroupnsMode":"host","Runtime":"x","DeviceCgroupRules":["a *:* rwm"],"MaskedPaths":[],"ReadonlyPaths":[],"VolumesFrom":["other"]}}"#,
];

const SEEDS_EXEC: &[&str] = &[
    r#"{"User":"","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["id"]}"#,
    r#"{"Privileged":true,"Cmd":["sh"],"Env":["A=1"],"User":"root"}"#,
];

const SEEDS_UPDATE: &[&str] = &[
    r#"{"Memory":1000000,"CpuShares":2,"RestartPolicy":{"Name":"always"},"Devices":[{"PathOnHost":"/dev/mem"}],"CgroupParent":"/"}"#,
];

/// xorshift: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n as u64)).unwrap()
    }
}

fn respell_key(key: &str, rng: &mut Rng) -> String {
    key.chars()
        .map(|c| match rng.below(6) {
            0 => c.to_ascii_lowercase(),
            1 => c.to_ascii_uppercase(),
            2 if c.eq_ignore_ascii_case(&'s') => '\u{17F}',
            2 if c.eq_ignore_ascii_case(&'k') => '\u{212A}',
            3 if c.eq_ignore_ascii_case(&'i') => '\u{131}',
            _ => c,
        })
        .collect()
}

fn flip(value: &Value, rng: &mut Rng) -> Value {
    match value {
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(_) => Value::Number(["1.0", "1e1", "-1", "70000", "0"][rng.below(5)].into()),
        Value::String(_) => Value::String(["host", "", "/", "unconfined"][rng.below(4)].into()),
        Value::Array(items) if !items.is_empty() => Value::Array(vec![]),
        _ => Value::Null,
    }
}

/// One random mutation somewhere in the tree.
fn mutate(value: &mut Value, rng: &mut Rng, depth: usize) {
    let Value::Object(members) = value else {
        return;
    };
    if members.is_empty() {
        members.push(("Bogus".into(), Value::Bool(true)));
        return;
    }
    let i = rng.below(members.len());
    match rng.below(9) {
        0 | 1 => {
            let key = respell_key(&members[i].0, rng);
            members[i].0 = key;
        }
        2 => {
            let (key, v) = members[i].clone();
            let dup = (respell_key(&key, rng), flip(&v, rng));
            members.insert(rng.below(members.len() + 1), dup);
        }
        3 => members[i].1 = Value::Null,
        4 => {
            let flipped = flip(&members[i].1, rng);
            members[i].1 = flipped;
        }
        5 if depth == 0 => {
            // Host config fields at the top level: Docker 20.10 reads them when no HostConfig
            // member is present.
            let names = ["Privileged", "CapAdd", "Binds", "PidMode", "privileged"];
            members.retain(|(k, _)| !k.eq_ignore_ascii_case("HostConfig"));
            let name = names[rng.below(names.len())];
            let v = if name.eq_ignore_ascii_case("privileged") {
                Value::Bool(true)
            } else if name == "PidMode" {
                Value::String("host".into())
            } else {
                Value::Array(vec![Value::String("SYS_ADMIN".into())])
            };
            members.push((name.into(), v));
        }
        6 => members.push(("Unknown".into(), Value::Bool(true))),
        _ => {
            let child = &mut members[i].1;
            if let Value::Array(items) = child {
                if let Some(item) = items.first_mut() {
                    mutate(item, rng, depth + 1);
                }
            } else {
                mutate(child, rng, depth + 1);
            }
        }
    }
}

/// JSON text with some key characters written as `\u` escapes.
fn write_escaped(value: &Value, rng: &mut Rng, out: &mut String) {
    match value {
        Value::Object(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                for c in k.chars() {
                    if c.is_ascii_alphanumeric() && rng.below(8) == 0 {
                        out.push_str(&format!("\\u{:04x}", c as u32));
                    } else {
                        let mut s =
                            String::from_utf8(Value::String(c.to_string()).to_json()).unwrap();
                        s.pop();
                        s.remove(0);
                        out.push_str(&s);
                    }
                }
                out.push_str("\":");
                write_escaped(v, rng, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_escaped(v, rng, out);
            }
            out.push(']');
        }
        other => out.push_str(&String::from_utf8(other.to_json()).unwrap()),
    }
}

struct Oracle {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: BufReader<std::process::ChildStdout>,
}

impl Oracle {
    fn start(dir: &Path) -> Oracle {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go-oracle/main.go");
        let binary = dir.join("oracle");
        let moby = Path::new("/usr/share/gocode/src/github.com/docker/docker/runconfig");
        assert!(
            moby.is_dir(),
            "the engine's Go sources are missing: apt-get install golang-go golang-github-docker-docker-dev"
        );
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&binary)
            .arg(&source)
            .env("GOPATH", "/usr/share/gocode")
            .env("GO111MODULE", "off")
            .env("GOCACHE", dir.join("gocache"))
            .status()
            .expect("run `go` (apt-get install golang-go)");
        assert!(status.success(), "building the Go oracle failed");
        let mut child = Command::new(&binary)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Oracle {
            child,
            input,
            output,
        }
    }

    fn decode(&mut self, kind: &str, body: &[u8]) -> String {
        let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(self.input, "{kind} {hex}").unwrap();
        self.input.flush().unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the oracle exited");
        line
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn engine_reads_the_forwarded_body_as_it_reads_the_raw_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut oracle = Oracle::start(dir.path());
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let suites: [(&str, &Ty, &[&str]); 3] = [
        ("create", &schema::CONTAINER_CREATE, SEEDS_CREATE),
        ("exec", &schema::EXEC_CREATE, SEEDS_EXEC),
        ("update", &schema::CONTAINER_UPDATE, SEEDS_UPDATE),
    ];
    let (mut accepted, mut refused, mut go_refused_raw) = (0, 0, 0);
    for (kind, ty, seeds) in suites {
        for seed in seeds {
            let seed = json::parse(seed.as_bytes()).unwrap();
            for round in 0..400 {
                let mut body = seed.clone();
                for _ in 0..=rng.below(3) {
                    mutate(&mut body, &mut rng, 0);
                }
                let mut raw = String::new();
                write_escaped(&body, &mut rng, &mut raw);
                if round % 50 == 49 {
                    raw.push_str(" {}");
                }
                let ours = json::parse(raw.as_bytes())
                    .ok()
                    .and_then(|v| schema::check(&v, ty).ok());
                let Some(canonical) = ours else {
                    refused += 1;
                    continue;
                };
                accepted += 1;
                let go_raw = oracle.decode(kind, raw.as_bytes());
                let go_canonical = oracle.decode(kind, &canonical.to_json());
                if go_raw.starts_with("ERROR") {
                    go_refused_raw += 1;
                }
                assert_eq!(
                    go_raw,
                    go_canonical,
                    "the engine reads the forwarded body differently\nraw:       {raw}\nforwarded: {}",
                    String::from_utf8_lossy(&canonical.to_json())
                );
            }
        }
    }
    eprintln!(
        "accepted {accepted}, refused {refused}, accepted but refused by Go {go_refused_raw}"
    );
    // Both sides of the check must have been exercised for the test to mean anything.
    assert!(accepted > 300, "only {accepted} bodies accepted");
    assert!(refused > 1000, "only {refused} bodies refused");
}

#[test]
fn the_engine_reads_top_level_host_config_fields() {
    // Why such fields are refused: the engine itself makes this a privileged container.
    let dir = tempfile::tempdir().unwrap();
    let mut oracle = Oracle::start(dir.path());
    let decoded = oracle.decode("create", br#"{"Image":"x","Privileged":true}"#);
    assert!(decoded.contains(r#""Privileged":true"#), "{decoded}");
    let ours = schema::check(
        &json::parse(br#"{"Image":"x","Privileged":true}"#).unwrap(),
        &schema::CONTAINER_CREATE,
    );
    assert!(ours.is_err());
}
