//! Registry Access Management and Image Access Management (DESIGN.md section 5) for one image
//! reference: the registry must be allowed, and a Docker Hub image must be of an allowed
//! category (or in an allowed organisation namespace or repository).
//!
//! Registry access comes first: `imageAccess.allowedRepositories` widens the Hub categories,
//! never the registries.

use crate::catalog::{category, Catalog, Category};
use crate::Settings;
use stockade_imageref::{Reference, RegistryHost, RepositoryPattern};

/// Why an image may not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessDenied {
    /// The registry is not in `registryAccess.allowedRegistries`.
    Registry {
        /// The registry host as Docker names it (`docker.io` for Docker Hub).
        host: String,
    },
    /// A Docker Hub image whose category is not allowed.
    Image {
        /// Its category.
        category: Category,
    },
}

impl AccessDenied {
    /// The rule id for the audit log.
    #[must_use]
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Registry { .. } => "ram.registry",
            Self::Image { .. } => "iam.category",
        }
    }

    /// The message in Docker Desktop's wording.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::Registry { host } => format!("registry access to {host} is not allowed"),
            Self::Image { category } => {
                format!("image access denied: {category} images not allowed")
            }
        }
    }
}

/// Registry Access Management alone: may `image`'s registry be reached (pull, push, tag into)?
///
/// # Errors
/// When the registry is not allowed.
pub fn registry_allowed(image: &Reference, settings: &Settings) -> Result<(), AccessDenied> {
    let Some(allowed) = &settings.registry_access.allowed_registries else {
        return Ok(());
    };
    // Entries were validated when the policy was loaded; one that still fails to parse here
    // allows nothing (fail closed).
    if allowed
        .iter()
        .filter_map(|entry| RegistryHost::parse(entry).ok())
        .any(|host| host.matches(image))
    {
        Ok(())
    } else {
        Err(AccessDenied::Registry {
            host: image.registry_host().to_owned(),
        })
    }
}

/// Image Access Management alone: may this Docker Hub image be used? Images of other
/// registries pass (registry access governs them).
///
/// # Errors
/// When the image's category is not allowed and no namespace or repository entry allows it.
pub fn image_allowed(
    image: &Reference,
    settings: &Settings,
    catalog: Option<&Catalog>,
) -> Result<(), AccessDenied> {
    let Some(found) = category(image, catalog) else {
        return Ok(());
    };
    let iam = &settings.image_access;
    let allowed = match found {
        Category::Official => iam.allow_official_images,
        Category::VerifiedPublisher => iam.allow_verified_publisher_images,
        Category::Community => iam.allow_community_images,
    };
    if allowed {
        return Ok(());
    }
    // Entries were validated at load; an entry that fails to parse here allows nothing.
    let listed = iam
        .organization_namespaces
        .iter()
        .filter_map(|ns| RepositoryPattern::namespace(ns).ok())
        .chain(
            iam.allowed_repositories
                .iter()
                .filter_map(|repo| RepositoryPattern::parse(repo).ok()),
        )
        .any(|pattern| pattern.matches(image));
    if listed {
        Ok(())
    } else {
        Err(AccessDenied::Image { category: found })
    }
}

/// Both: may `image` be pulled or run?
///
/// # Errors
/// The first rule that refuses, registry access first.
pub fn access_allowed(
    image: &Reference,
    settings: &Settings,
    catalog: Option<&Catalog>,
) -> Result<(), AccessDenied> {
    registry_allowed(image, settings)?;
    image_allowed(image, settings, catalog)
}

/// Whether the caller's image rules restrict anything at all (so that a request the gateway
/// cannot see into, such as a BuildKit build, would need them enforced elsewhere).
#[must_use]
pub fn restricts_registries(settings: &Settings) -> bool {
    settings.registry_access.allowed_registries.is_some()
}

/// Whether any Docker Hub category is refused.
#[must_use]
pub fn restricts_categories(settings: &Settings) -> bool {
    let iam = &settings.image_access;
    !(iam.allow_official_images
        && iam.allow_verified_publisher_images
        && iam.allow_community_images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Policy, UserContext};

    fn settings(extra: &str) -> Settings {
        let text = format!(r#"{{"configurationFileVersion": 2 {extra}}}"#);
        Policy::parse("p.json", text.as_bytes())
            .unwrap()
            .effective(None, &UserContext::new(1000, "/home/ann"))
    }

    fn r(s: &str) -> Reference {
        Reference::parse_normalized(s).unwrap()
    }

    #[test]
    fn registries() {
        let s = settings(
            r#", "registryAccess": {"locked": true, "allowedRegistries": ["docker.io", "127.0.0.1:5000"]}"#,
        );
        assert!(registry_allowed(&r("busybox"), &s).is_ok());
        assert!(registry_allowed(&r("index.docker.io/library/busybox"), &s).is_ok());
        assert!(registry_allowed(&r("registry-1.docker.io/ann/x"), &s).is_ok());
        assert!(registry_allowed(&r("127.0.0.1:5000/x"), &s).is_ok());
        let denied = registry_allowed(&r("127.0.0.2:5000/x"), &s).unwrap_err();
        assert_eq!(
            denied.message(),
            "registry access to 127.0.0.2:5000 is not allowed"
        );
        assert_eq!(denied.rule(), "ram.registry");
        assert!(registry_allowed(&r("127.0.0.1/x"), &s).is_err());
        assert!(registry_allowed(&r("localhost:5000/x"), &s).is_err());
        assert!(registry_allowed(&r("ghcr.io/acme/x"), &s).is_err());
        // The built-in default: Docker Hub only.
        let builtin = Policy::builtin().effective(None, &UserContext::new(1000, "/home/ann"));
        assert!(registry_allowed(&r("busybox"), &builtin).is_ok());
        assert!(registry_allowed(&r("quay.io/x/y"), &builtin).is_err());
        // No list at all: unrestricted.
        let mut open = s.clone();
        open.registry_access.allowed_registries = None;
        assert!(!restricts_registries(&open) && restricts_registries(&s));
        assert!(registry_allowed(&r("quay.io/x"), &open).is_ok());
    }

    #[test]
    fn categories() {
        let s = settings(
            r#", "imageAccess": {"locked": true, "allowOfficialImages": true,
                "allowVerifiedPublisherImages": false, "allowCommunityImages": false,
                "organizationNamespaces": ["myorg"], "allowedRepositories": ["ann/tool"]}"#,
        );
        let catalog = Catalog::parse(
            "c.json",
            br#"{"catalogVersion": 1, "namespaces": {"bitnami": "verified-publisher"}}"#,
        )
        .unwrap();
        let c = Some(&catalog);
        assert!(image_allowed(&r("busybox:1.36"), &s, c).is_ok());
        assert!(image_allowed(&r("myorg/app"), &s, c).is_ok());
        assert!(image_allowed(&r("myorg/team/app"), &s, c).is_ok());
        assert!(image_allowed(&r("ann/tool:2"), &s, c).is_ok());
        assert!(image_allowed(&r("ghcr.io/ann/anything"), &s, c).is_ok());
        assert_eq!(
            image_allowed(&r("bitnami/redis"), &s, c)
                .unwrap_err()
                .message(),
            "image access denied: verified publisher images not allowed"
        );
        let denied = image_allowed(&r("ann/other"), &s, c).unwrap_err();
        assert_eq!(
            denied.message(),
            "image access denied: community images not allowed"
        );
        assert_eq!(denied.rule(), "iam.category");
        assert!(image_allowed(&r("myorg-evil/app"), &s, c).is_err());
        assert!(restricts_categories(&s));
        let official_off =
            settings(r#", "imageAccess": {"locked": true, "allowOfficialImages": false}"#);
        assert!(image_allowed(&r("busybox"), &official_off, None).is_err());
        assert!(image_allowed(&r("ann/x"), &official_off, None).is_ok());
    }
}
