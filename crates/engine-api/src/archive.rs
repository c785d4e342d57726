//! Reading the few files the rules need out of a tar stream the engine will unpack: the
//! Dockerfile of a build context, the `manifest.json` (or legacy `repositories`) of a
//! `docker load` archive.
//!
//! The engine unpacks the whole archive into a directory and then opens the file by path, so
//! what counts is the file that would be at that path after unpacking: the last entry with that
//! name wins. Links change what a path means after unpacking, so an archive where the wanted
//! path is a link, or where any entry is written below a symbolic link the archive created
//! (which a client archiving a directory never produces), is refused rather than modelled.
//! Compression: gzip (what `docker build --compress` and `docker save | gzip` produce) is read;
//! bzip2, xz and zstd, which the engine also accepts, are refused with a message.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{BufRead, BufReader, Read};

/// Largest wanted file kept (a Dockerfile or manifest is a few KiB).
pub const MAX_WANTED_FILE: u64 = 1 << 20;

/// Why the files could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveError(pub String);

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArchiveError {}

fn err(message: impl Into<String>) -> ArchiveError {
    ArchiveError(message.into())
}

/// A path as the unpacked tree sees it: components without `.`, `..` resolved (never above
/// the root), joined with `/`.
#[must_use]
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Reads the contents of `wanted` (cleaned paths) from a tar stream, gzip or plain. Paths that
/// are not in the archive are missing from the result.
///
/// # Errors
/// A stream that is not a tar archive (or uses a compression the gateway does not read), a
/// wanted file that is a link or too large, or an entry written below a symbolic link.
pub fn read_files(
    reader: impl Read,
    wanted: &[String],
) -> Result<BTreeMap<String, Vec<u8>>, ArchiveError> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let head = reader
        .fill_buf()
        .map_err(|e| err(format!("the archive could not be read: {e}")))?;
    let compression = match head {
        [0x1f, 0x8b, ..] => Some("gzip"),
        [b'B', b'Z', b'h', ..] => Some("bzip2"),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Some("xz"),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some("zstd"),
        _ => None,
    };
    match compression {
        Some("gzip") => scan(flate2::read::MultiGzDecoder::new(reader), wanted),
        Some(other) => Err(err(format!(
            "the archive is compressed with {other}, which the gateway cannot inspect; send it uncompressed or gzip-compressed"
        ))),
        None => scan(reader, wanted),
    }
}

fn scan(reader: impl Read, wanted: &[String]) -> Result<BTreeMap<String, Vec<u8>>, ArchiveError> {
    let mut archive = tar::Archive::new(reader);
    let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut symlinks: BTreeSet<String> = BTreeSet::new();
    let entries = archive
        .entries()
        .map_err(|e| err(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| err(format!("the tar archive is malformed: {e}")))?;
        let raw = entry.path_bytes();
        let name = std::str::from_utf8(&raw)
            .map(clean)
            .map_err(|_| err("an entry name in the archive is not UTF-8"))?;
        // Written below a symbolic link made earlier: unpacking would follow it.
        let mut prefix = String::new();
        for part in name.split('/') {
            if !prefix.is_empty() && symlinks.contains(&prefix) {
                return Err(err(format!(
                    "the archive writes {name:?} through the symbolic link {prefix:?}; the gateway cannot check what that unpacks to"
                )));
            }
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
        }
        let kind = entry.header().entry_type();
        let is_wanted = wanted.contains(&name);
        if kind.is_symlink() {
            symlinks.insert(name.clone());
        } else {
            symlinks.remove(&name);
        }
        if !is_wanted {
            continue;
        }
        if !kind.is_file() {
            // A later non-file entry replaces an earlier file on unpacking.
            found.remove(&name);
            if kind.is_symlink() || kind.is_hard_link() {
                return Err(err(format!(
                    "{name:?} in the archive is a link; the gateway cannot check what it points to"
                )));
            }
            continue;
        }
        if entry.size() > MAX_WANTED_FILE {
            return Err(err(format!("{name:?} in the archive is larger than 1 MiB")));
        }
        let mut content = Vec::new();
        entry
            .by_ref()
            .take(MAX_WANTED_FILE + 1)
            .read_to_end(&mut content)
            .map_err(|e| err(format!("{name:?} could not be read from the archive: {e}")))?;
        found.insert(name, content);
    }
    Ok(found)
}

/// The Dockerfile the classic builder would read from a build context: `dockerfile` (the
/// query parameter, default `Dockerfile`), falling back to `dockerfile` as the builder does
/// when the default name is missing.
///
/// # Errors
/// As [`read_files`], and when the archive has no such file.
pub fn build_dockerfile(reader: impl Read, dockerfile: &str) -> Result<Vec<u8>, ArchiveError> {
    let default = dockerfile.is_empty() || dockerfile == "Dockerfile";
    let primary = clean(if dockerfile.is_empty() {
        "Dockerfile"
    } else {
        dockerfile
    });
    let mut wanted = vec![primary.clone()];
    if default {
        wanted.push("dockerfile".to_owned());
    }
    let mut files = read_files(reader, &wanted)?;
    files
        .remove(&primary)
        .or_else(|| files.remove("dockerfile"))
        .ok_or_else(|| err(format!("the build context has no {primary}")))
}

/// The image names a `docker load` archive would create: the `RepoTags` of `manifest.json`, or
/// without one, the entries of the legacy `repositories` file (as the engine falls back).
///
/// # Errors
/// As [`read_files`], and when neither file is readable JSON of the expected shape.
pub fn load_names(reader: impl Read) -> Result<Vec<String>, ArchiveError> {
    let mut files = read_files(
        reader,
        &["manifest.json".to_owned(), "repositories".to_owned()],
    )?;
    if let Some(manifest) = files.remove("manifest.json") {
        let value = crate::json::parse(&manifest)
            .map_err(|e| err(format!("manifest.json in the archive: {e}")))?;
        let mut names = Vec::new();
        let items = value
            .as_array()
            .ok_or_else(|| err("manifest.json in the archive is not a list"))?;
        let field = crate::json::go_fold("RepoTags");
        for item in items {
            // Go's decoder matches keys case-insensitively and keeps the last duplicate.
            let tags = item.as_object().and_then(|members| {
                members
                    .iter()
                    .rev()
                    .find(|(k, _)| crate::json::go_fold(k) == field)
                    .map(|(_, v)| v)
            });
            if let Some(tags) = tags.and_then(|t| t.as_array()) {
                for tag in tags {
                    let tag = tag
                        .as_str()
                        .ok_or_else(|| err("manifest.json: a RepoTags entry is not a string"))?;
                    names.push(tag.to_owned());
                }
            }
        }
        return Ok(names);
    }
    if let Some(repositories) = files.remove("repositories") {
        let value = crate::json::parse(&repositories)
            .map_err(|e| err(format!("repositories in the archive: {e}")))?;
        let repos = value
            .as_object()
            .ok_or_else(|| err("repositories in the archive is not an object"))?;
        let mut names = Vec::new();
        for (repo, tags) in repos {
            let tags = tags
                .as_object()
                .ok_or_else(|| err("repositories: an entry is not an object"))?;
            for (tag, _) in tags {
                names.push(format!("{repo}:{tag}"));
            }
        }
        return Ok(names);
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    enum E<'a> {
        File(&'a str, &'a [u8]),
        Link(&'a str, &'a str),
        Dir(&'a str),
    }

    fn tar(entries: &[E<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for e in entries {
            let mut header = tar::Header::new_gnu();
            match e {
                E::File(name, content) => {
                    header.set_size(content.len() as u64);
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(0o644);
                    // Raw names, `..` included, as a hostile client could write them.
                    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                    header.set_cksum();
                    builder.append(&header, *content).unwrap();
                }
                E::Link(name, target) => {
                    header.set_size(0);
                    header.set_entry_type(tar::EntryType::Symlink);
                    builder.append_link(&mut header, name, target).unwrap();
                }
                E::Dir(name) => {
                    header.set_size(0);
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    builder.append_data(&mut header, name, &[][..]).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn the_last_entry_wins_and_names_are_cleaned() {
        let t = tar(&[
            E::File("Dockerfile", b"FROM a"),
            E::File("src/x", b"x"),
            E::File("./Dockerfile", b"FROM b"),
        ]);
        assert_eq!(build_dockerfile(&t[..], "").unwrap(), b"FROM b");
        let t = tar(&[
            E::Dir("sub"),
            E::File("sub/../build/Dockerfile.dev", b"FROM c"),
        ]);
        assert_eq!(
            build_dockerfile(&t[..], "./build//Dockerfile.dev").unwrap(),
            b"FROM c"
        );
        let t = tar(&[E::File("dockerfile", b"FROM lower")]);
        assert_eq!(
            build_dockerfile(&t[..], "Dockerfile").unwrap(),
            b"FROM lower"
        );
        assert!(build_dockerfile(&t[..], "other").is_err());
    }

    #[test]
    fn links_that_change_the_meaning_are_refused() {
        let t = tar(&[E::File("real", b"FROM a"), E::Link("Dockerfile", "real")]);
        assert!(build_dockerfile(&t[..], "").is_err());
        let t = tar(&[
            E::Link("sub", "other"),
            E::File("sub/Dockerfile", b"FROM a"),
        ]);
        assert!(build_dockerfile(&t[..], "other/Dockerfile").is_err());
        // Ordinary symbolic links elsewhere in a context are fine.
        let t = tar(&[
            E::Link("node_modules/.bin/x", "../x/cli.js"),
            E::File("Dockerfile", b"FROM a"),
        ]);
        assert_eq!(build_dockerfile(&t[..], "").unwrap(), b"FROM a");
    }

    #[test]
    fn gzip_is_read_other_compressions_are_refused() {
        use std::io::Write as _;
        let t = tar(&[E::File("Dockerfile", b"FROM gz")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&t).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(build_dockerfile(&gz[..], "").unwrap(), b"FROM gz");
        let xz = [0xfd, b'7', b'z', b'X', b'Z', 0x00, 0, 0];
        assert!(build_dockerfile(&xz[..], "").unwrap_err().0.contains("xz"));
        assert!(build_dockerfile(&b"FROM busybox\n"[..], "").is_err());
    }

    #[test]
    fn load_names_come_from_the_manifest_or_the_legacy_file() {
        let t = tar(&[
            E::File("repositories", br#"{"ignored": {"x": "y"}}"#),
            E::File("manifest.json", br#"[{"Config":"c.json","RepoTags":["a:1","127.0.0.2:5000/b:2"],"Layers":[]},{"RepoTags":null},{"RepoTags":["x"],"REPOTAGS":["evil.io/y:1"]}]"#),
        ]);
        assert_eq!(
            load_names(&t[..]).unwrap(),
            ["a:1", "127.0.0.2:5000/b:2", "evil.io/y:1"]
        );
        let t = tar(&[E::File(
            "repositories",
            br#"{"evil.io/x": {"latest": "abc"}}"#,
        )]);
        assert_eq!(load_names(&t[..]).unwrap(), ["evil.io/x:latest"]);
        let t = tar(&[E::File("manifest.json", b"{")]);
        assert!(load_names(&t[..]).is_err());
    }
}
