//! The Docker engine behind the gateway: starting Stockade's own hardened `dockerd`, deciding
//! whether an engine someone else runs is safe to serve, and the host checks of `stockade doctor`.
//!
//! ```
//! use stockade_engine::safety::exposure;
//! // A socket in the `docker` group is a way around the gateway.
//! assert!(exposure(0, 107, 0o660, "docker", &[]).is_some());
//! assert!(exposure(0, 0, 0o600, "root", &[]).is_none());
//! // A root:root 0660 socket is a way in once a user is in group root.
//! assert!(exposure(0, 0, 0o660, "root", &["alice".to_owned()]).is_some());
//! ```
#![forbid(unsafe_code)]

pub mod client;
pub mod doctor;
pub mod managed;
pub mod safety;

use std::path::PathBuf;

pub use managed::{
    daemon_config, find_dockerd, BridgeSubnet, EngineSettings, Layout, ManagedEngine, PolicyOptions,
};
pub use safety::{check_engine, EngineFacts, Isolation};

/// Everything that can go wrong with the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine socket did not answer.
    #[error("cannot reach the docker engine at {socket}: {detail}; check that it is running and the path is right")]
    Unreachable {
        /// The engine socket.
        socket: PathBuf,
        /// What happened.
        detail: String,
    },
    /// The engine socket could not be examined.
    #[error("cannot examine the engine socket {socket}: {source}")]
    Socket {
        /// The engine socket.
        socket: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Someone besides root can open the engine socket, so the gateway could be walked around.
    #[error("the engine socket {socket} is not safe to put behind the gateway: {way_in}; make it root-only (\"group\": \"root\" in daemon.json, or chmod 0600 {socket})")]
    SocketExposed {
        /// The engine socket.
        socket: PathBuf,
        /// Who can open it.
        way_in: String,
    },
    /// The engine also listens on TCP, where nobody is identified and nothing is checked.
    #[error("the engine at {socket} (dockerd pid {pid}) also listens on TCP port {ports}: whoever reaches it is root on this host, around the gateway; remove the tcp:// entries from its \"hosts\" (daemon.json) and -H flags, or lock exposeDockerAPIOnTCP2375 on in the admin policy if that is really meant")]
    TcpExposed {
        /// The engine socket.
        socket: PathBuf,
        /// The engine's pid.
        pid: i32,
        /// Its TCP ports.
        ports: String,
    },
    /// The engine runs containers without user namespaces.
    #[error("the engine at {socket} runs containers without user namespaces, so root in a container is root on the host; enable \"userns-remap\": \"default\" in its daemon.json or run it rootless (stockade up does this for you)")]
    NoUserNamespaces {
        /// The engine socket.
        socket: PathBuf,
    },
    /// A file or directory of the managed engine could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another `stockade up` holds the state directory.
    #[error("the state directory {state_dir} is in use by another stockade (pid {holder}); stop it first or pass another --state-dir")]
    StateDirInUse {
        /// The state directory.
        state_dir: PathBuf,
        /// The pid recorded by the holder.
        holder: String,
    },
    /// The bridge subnet collides with an address on the host.
    #[error("the bridge subnet {subnet} overlaps {used} on interface {interface}; pass another --bridge-subnet")]
    SubnetInUse {
        /// The requested subnet.
        subnet: String,
        /// The interface that has it.
        interface: String,
        /// The address found there.
        used: String,
    },
    /// The bridge could not be set up.
    #[error("cannot set up the bridge {bridge}: {detail}")]
    Bridge {
        /// The bridge name.
        bridge: String,
        /// What failed.
        detail: String,
    },
    /// dockerd could not be started.
    #[error("cannot start {dockerd}: {source}; install it with `apt-get install docker.io`")]
    Spawn {
        /// The dockerd path.
        dockerd: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// dockerd exited by itself, while starting or while serving.
    #[error("dockerd exited ({status}); its log {log} ends with:\n{tail}")]
    Exited {
        /// The exit status.
        status: String,
        /// The log path.
        log: PathBuf,
        /// The log's last lines.
        tail: String,
    },
    /// dockerd did not answer in time.
    #[error("dockerd did not answer /_ping within {seconds} s; its log {log} ends with:\n{tail}")]
    StartTimeout {
        /// The limit.
        seconds: u64,
        /// The log path.
        log: PathBuf,
        /// The log's last lines.
        tail: String,
    },
}
