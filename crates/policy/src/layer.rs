//! One settings file reduced to the values Stockade acts on: a value per leaf key path and a
//! `locked` flag per setting. Precedence (`settings.rs`) works on these.

use std::collections::HashMap;

use serde_json::Value;

use crate::json::{Kind, Node};
use crate::shape::Mode;

/// Who a setting applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Decided per caller: a user may override it when the admin left it unlocked.
    PerUser,
    /// One engine serves every user, so only the admin (or built-in) value can apply.
    Engine,
}

/// A key path Stockade acts on, the setting whose `locked` governs it, and its scope.
#[derive(Debug)]
pub(crate) struct Leaf {
    pub(crate) path: &'static str,
    pub(crate) group: &'static str,
    pub(crate) scope: Scope,
}

const fn leaf(path: &'static str, group: &'static str, scope: Scope) -> Leaf {
    Leaf { path, group, scope }
}

const ECI: &str = "enhancedContainerIsolation";
const PROXY: &str = "proxy";
const CPROXY: &str = "containersProxy";
const IAM: &str = "imageAccess";

/// Every value with an effect, in display order.
pub(crate) const LEAVES: &[Leaf] = &[
    leaf("enhancedContainerIsolation.value", ECI, Scope::PerUser),
    leaf(
        "enhancedContainerIsolation.dockerSocketMount.imageList.images",
        ECI,
        Scope::PerUser,
    ),
    leaf(
        "enhancedContainerIsolation.dockerSocketMount.imageList.allowDerivedImages",
        ECI,
        Scope::PerUser,
    ),
    leaf(
        "enhancedContainerIsolation.dockerSocketMount.commandList",
        ECI,
        Scope::PerUser,
    ),
    leaf("blockDockerLoad.value", "blockDockerLoad", Scope::PerUser),
    leaf(
        "filesharingAllowedDirectories.value",
        "filesharingAllowedDirectories",
        Scope::PerUser,
    ),
    leaf(
        "exposeDockerAPIOnTCP2375.value",
        "exposeDockerAPIOnTCP2375",
        Scope::Engine,
    ),
    leaf("proxy.mode", PROXY, Scope::Engine),
    leaf("proxy.http", PROXY, Scope::Engine),
    leaf("proxy.https", PROXY, Scope::Engine),
    leaf("proxy.exclude", PROXY, Scope::Engine),
    leaf("proxy.pac", PROXY, Scope::Engine),
    leaf("proxy.embeddedPac", PROXY, Scope::Engine),
    leaf("containersProxy.mode", CPROXY, Scope::Engine),
    leaf("containersProxy.http", CPROXY, Scope::Engine),
    leaf("containersProxy.https", CPROXY, Scope::Engine),
    leaf("containersProxy.exclude", CPROXY, Scope::Engine),
    leaf("containersProxy.pac", CPROXY, Scope::Engine),
    leaf("containersProxy.embeddedPac", CPROXY, Scope::Engine),
    leaf("containersProxy.transparentPorts", CPROXY, Scope::Engine),
    leaf(
        "linuxVM.dockerDaemonOptions.value",
        "linuxVM.dockerDaemonOptions",
        Scope::Engine,
    ),
    leaf(
        "registryAccess.allowedRegistries",
        "registryAccess",
        Scope::PerUser,
    ),
    leaf("imageAccess.allowOfficialImages", IAM, Scope::PerUser),
    leaf(
        "imageAccess.allowVerifiedPublisherImages",
        IAM,
        Scope::PerUser,
    ),
    leaf("imageAccess.allowCommunityImages", IAM, Scope::PerUser),
    leaf("imageAccess.organizationNamespaces", IAM, Scope::PerUser),
    leaf("imageAccess.allowedRepositories", IAM, Scope::PerUser),
    // A catalog path chosen by a user would make the root gateway read any file: admin only.
    leaf("imageAccess.catalog", IAM, Scope::Engine),
    leaf("audit.path", "audit", Scope::Engine),
    leaf("audit.syslog", "audit", Scope::Engine),
];

/// The values of one file, keyed by leaf path, and the `locked` flag of each setting present.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Layer {
    pub(crate) values: HashMap<&'static str, Value>,
    pub(crate) locks: HashMap<&'static str, bool>,
}

impl Layer {
    /// Extracts the leaves from a validated document.
    pub(crate) fn from_root(root: &Node, mode: Mode) -> Layer {
        let mut layer = Layer::default();
        for leaf in LEAVES {
            if let Some(node) = lookup(root, leaf.path) {
                layer.values.insert(leaf.path, to_value(node));
            } else if leaf.path == "filesharingAllowedDirectories.value" {
                // Docker Desktop's bare-array form: the value itself, always enforced.
                if let Some(
                    node @ Node {
                        kind: Kind::Array(_),
                        ..
                    },
                ) = lookup(root, "filesharingAllowedDirectories")
                {
                    layer.values.insert(leaf.path, to_value(node));
                }
            }
            if layer.locks.contains_key(leaf.group) {
                continue;
            }
            if let Some(group) = lookup(root, leaf.group) {
                let locked = match &group.kind {
                    Kind::Object(_) => match lookup(group, "locked") {
                        Some(Node {
                            kind: Kind::Bool(b),
                            ..
                        }) => *b,
                        // `audit` has no `locked`: it is the admin's alone.
                        _ => mode == Mode::Admin,
                    },
                    // The bare filesharing array.
                    _ => mode == Mode::Admin,
                };
                layer.locks.insert(leaf.group, locked);
            }
        }
        layer
    }
}

/// Follows a dotted key path through objects.
fn lookup<'a>(root: &'a Node, path: &str) -> Option<&'a Node> {
    path.split('.')
        .try_fold(root, |node, key| match &node.kind {
            Kind::Object(members) => members.iter().find(|m| m.key == key).map(|m| &m.value),
            _ => None,
        })
}

/// Converts a parsed node (duplicates already removed) into a `serde_json::Value`.
pub(crate) fn to_value(node: &Node) -> Value {
    match &node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Number(n) => match n.int {
            Some(i) => Value::from(i),
            None => serde_json::Number::from_f64(n.float).map_or(Value::Null, Value::Number),
        },
        Kind::String(s) => Value::String(s.clone()),
        Kind::Array(items) => Value::Array(items.iter().map(to_value).collect()),
        Kind::Object(members) => Value::Object(
            members
                .iter()
                .map(|m| (m.key.clone(), to_value(&m.value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn extracts_leaves_and_locks() {
        let root = parse(
            r#"{"enhancedContainerIsolation": {"locked": true, "value": false,
                  "dockerSocketMount": {"imageList": {"images": ["a:*"]}}},
                "filesharingAllowedDirectories": [{"path": "$HOME"}],
                "audit": {"syslog": true}}"#,
        )
        .unwrap()
        .root;
        let layer = Layer::from_root(&root, Mode::Admin);
        assert_eq!(
            layer.values["enhancedContainerIsolation.value"],
            Value::Bool(false)
        );
        assert_eq!(
            layer.values["enhancedContainerIsolation.dockerSocketMount.imageList.images"],
            serde_json::json!(["a:*"])
        );
        assert!(!layer
            .values
            .contains_key("enhancedContainerIsolation.dockerSocketMount.commandList"));
        assert_eq!(
            layer.values["filesharingAllowedDirectories.value"],
            serde_json::json!([{"path": "$HOME"}])
        );
        assert!(layer.locks["enhancedContainerIsolation"]);
        assert!(layer.locks["filesharingAllowedDirectories"]);
        assert!(layer.locks["audit"]);
        assert!(!layer.locks.contains_key("proxy"));

        let user = Layer::from_root(&root, Mode::User);
        assert!(!user.locks["filesharingAllowedDirectories"]);
    }

    #[test]
    fn leaf_groups_are_prefixes() {
        for leaf in LEAVES {
            assert!(
                leaf.path.starts_with(&format!("{}.", leaf.group)),
                "{}",
                leaf.path
            );
        }
    }
}
