//! Is an engine safe to put behind the gateway? Its socket must be reachable by root only (else
//! the gateway can simply be walked around) and it must run containers in a user namespace (else
//! root in a container is root on the host, and one missed rule is a host takeover).

use crate::{client, EngineError};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// What the checks found out about an engine that passed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineFacts {
    /// `ServerVersion` from `/info`.
    pub version: String,
    /// How containers are isolated: `userns` (userns-remap) or `rootless`.
    pub isolation: Isolation,
}

/// How the engine maps container root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// `userns-remap`: container root is an unprivileged subordinate uid on the host.
    UsernsRemap,
    /// A rootless engine: the engine itself is unprivileged.
    Rootless,
}

/// Who besides root can open a socket, if anyone.
///
/// Returns a sentence naming the way in, or `None` when only root can connect.
///
/// # Errors
/// [`EngineError::Socket`] when the socket cannot be examined.
pub fn socket_exposure(socket: &Path) -> Result<Option<String>, EngineError> {
    let meta = std::fs::metadata(socket).map_err(|source| EngineError::Socket {
        socket: socket.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    Ok(exposure(
        meta.uid(),
        meta.gid(),
        mode,
        &group_name(meta.gid()),
        &group_members(meta.gid()),
    ))
}

/// The pure rule behind [`socket_exposure`]. `members` are the group's members other than
/// root (see [`group_members`]).
#[must_use]
pub fn exposure(uid: u32, gid: u32, mode: u32, group: &str, members: &[String]) -> Option<String> {
    // Connecting to a unix socket needs write permission on it; read and execute bits do not
    // matter.
    if uid != 0 && mode & 0o200 != 0 {
        return Some(format!(
            "it is owned by uid {uid}, who can connect to it (mode {mode:04o})"
        ));
    }
    if mode & 0o002 != 0 {
        return Some(format!("every user can connect to it (mode {mode:04o})"));
    }
    if mode & 0o020 != 0 {
        let named = if members.is_empty() {
            String::new()
        } else {
            format!(" ({})", members.join(", "))
        };
        // Group root is root's own, so a root:root 0660 socket is root-only, until someone
        // adds a user to group root: then that user is root on the host through the engine.
        if gid != 0 || !members.is_empty() {
            return Some(format!(
                "members of group {group}{named} can connect to it (mode {mode:04o})"
            ));
        }
    }
    None
}

fn group_name(gid: u32) -> String {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| g.name)
}

/// The members of a group other than root: listed in /etc/group, plus the users whose primary
/// group it is (accounts with uid 0 are root whatever their name, and are left out).
#[must_use]
pub fn group_members(gid: u32) -> Vec<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let listed = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.mem)
        .unwrap_or_default();
    members_of(gid, &listed, &passwd)
}

/// The pure rule behind [`group_members`], over the group's member list and /etc/passwd.
#[must_use]
pub fn members_of(gid: u32, listed: &[String], passwd: &str) -> Vec<String> {
    let mut root_accounts = std::collections::BTreeSet::new();
    let mut members: std::collections::BTreeSet<String> = listed.iter().cloned().collect();
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() <= 3 {
            continue;
        }
        if fields[2].parse::<u32>().ok() == Some(0) {
            root_accounts.insert(fields[0].to_owned());
            continue;
        }
        if fields[3].parse::<u32>().ok() == Some(gid) {
            members.insert(fields[0].to_owned());
        }
    }
    members
        .into_iter()
        .filter(|m| !root_accounts.contains(m) && m != "root")
        .collect()
}

/// Whether `/info`'s `SecurityOptions` show user namespaces or a rootless engine.
#[must_use]
pub fn isolation_from_info(info: &serde_json::Value) -> Option<Isolation> {
    let options = info.get("SecurityOptions")?.as_array()?;
    let has = |name: &str| {
        options.iter().filter_map(|o| o.as_str()).any(|o| {
            o.split(',')
                .any(|field| field.strip_prefix("name=") == Some(name))
        })
    };
    if has("userns") {
        Some(Isolation::UsernsRemap)
    } else if has("rootless") {
        Some(Isolation::Rootless)
    } else {
        None
    }
}

/// Checks that the engine at `socket` is safe to serve: root-only socket, no TCP listener
/// (unless `tcp_allowed`: the admin locked `exposeDockerAPIOnTCP2375` on), user namespaces on.
///
/// The TCP listeners are those of the process holding the socket, read from `/proc`; an engine
/// whose process cannot be seen from here (another PID namespace) is judged by its socket and
/// `/info` only, and that is logged.
///
/// # Errors
/// [`EngineError::Unreachable`], [`EngineError::Socket`], [`EngineError::SocketExposed`],
/// [`EngineError::TcpExposed`] or [`EngineError::NoUserNamespaces`].
pub async fn check_engine(socket: &Path, tcp_allowed: bool) -> Result<EngineFacts, EngineError> {
    if let Some(way_in) = socket_exposure(socket)? {
        return Err(EngineError::SocketExposed {
            socket: socket.to_owned(),
            way_in,
        });
    }
    match crate::doctor::socket_holder_tcp_ports(socket) {
        Some((pid, ports)) if !ports.is_empty() && !tcp_allowed => {
            return Err(EngineError::TcpExposed {
                socket: socket.to_owned(),
                pid,
                ports: ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Some(_) => {}
        None => tracing::warn!(
            socket = %socket.display(),
            "no process visible here holds the engine socket, so its TCP listeners cannot be checked"
        ),
    }
    let info = client::get_json(socket, "/info").await?;
    let isolation = isolation_from_info(&info).ok_or_else(|| EngineError::NoUserNamespaces {
        socket: socket.to_owned(),
    })?;
    let version = info
        .get("ServerVersion")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    Ok(EngineFacts { version, isolation })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn root_only_sockets_pass() {
        assert_eq!(exposure(0, 0, 0o660, "root", &[]), None);
        assert_eq!(exposure(0, 0, 0o600, "root", &[]), None);
        assert_eq!(exposure(0, 107, 0o600, "docker", &[]), None);
    }

    #[test]
    fn a_user_in_group_root_makes_a_root_group_socket_exposed() {
        let members = vec!["alice".to_owned()];
        let way_in = exposure(0, 0, 0o660, "root", &members).unwrap();
        assert!(way_in.contains("group root (alice)"), "{way_in}");
        // Without group write permission the membership does not matter.
        assert_eq!(exposure(0, 0, 0o600, "root", &members), None);
    }

    #[test]
    fn group_members_come_from_the_list_and_primary_groups_without_root() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\n\
            toor:x:0:0::/root:/bin/sh\n\
            alice:x:1000:1000::/home/alice:/bin/sh\n\
            bob:x:1001:0::/home/bob:/bin/sh\n\
            broken-line\n";
        let listed = vec!["root".to_owned(), "toor".to_owned(), "carol".to_owned()];
        assert_eq!(members_of(0, &listed, passwd), vec!["bob", "carol"]);
        assert_eq!(members_of(1000, &[], passwd), vec!["alice"]);
        assert!(members_of(4242, &[], passwd).is_empty());
    }

    #[test]
    fn exposed_sockets_are_named() {
        let docker = exposure(0, 107, 0o660, "docker", &[]).unwrap();
        assert!(docker.contains("group docker"), "{docker}");
        assert!(exposure(0, 0, 0o666, "root", &[])
            .unwrap()
            .contains("every user"));
        assert!(exposure(0, 0, 0o602, "root", &[]).is_some());
        assert!(exposure(0, 107, 0o620, "docker", &[]).is_some());
        // Without write permission nobody can connect.
        assert_eq!(exposure(0, 0, 0o755, "root", &[]), None);
        assert_eq!(exposure(0, 107, 0o640, "docker", &[]), None);
        assert!(exposure(1000, 0, 0o600, "root", &[])
            .unwrap()
            .contains("uid 1000"));
    }

    #[test]
    fn isolation_is_read_from_security_options() {
        let remap = json!({"SecurityOptions": ["name=seccomp,profile=default", "name=userns"]});
        assert_eq!(isolation_from_info(&remap), Some(Isolation::UsernsRemap));
        let rootless = json!({"SecurityOptions": ["name=seccomp,profile=default", "name=rootless", "name=cgroupns"]});
        assert_eq!(isolation_from_info(&rootless), Some(Isolation::Rootless));
        let plain = json!({"SecurityOptions": ["name=seccomp,profile=default", "name=apparmor"]});
        assert_eq!(isolation_from_info(&plain), None);
        // A look-alike option must not count.
        let fake = json!({"SecurityOptions": ["name=usernsx", "name=seccomp,profile=userns"]});
        assert_eq!(isolation_from_info(&fake), None);
        assert_eq!(isolation_from_info(&json!({})), None);
    }
}
