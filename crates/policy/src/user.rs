//! Reading a user's `~/.config/stockade/settings.json` as root, safely, and caching it per uid.
//!
//! The gateway runs as root and the file belongs to an unprivileged user, who controls every
//! directory below their home. So: each component below the home directory is opened relative
//! to its parent with `O_NOFOLLOW` (a symlink anywhere is refused, so a user cannot make root
//! read `/etc/shadow`); directories must belong to the user or root, the file to the user; it
//! must be a regular file (opened `O_NONBLOCK`, so a FIFO cannot hang the gateway), not writable
//! by group or others, and at most 256 KiB. Errors give positions and key paths (keys escaped
//! and shortened), never values or other bytes of the file.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rustix::fs::{fstat, openat, statat, AtFlags, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;

use crate::error::UserSettingsError;
use crate::settings::UserContext;
use crate::UserSettings;

/// The user settings file, relative to the home directory.
pub const USER_SETTINGS_PATH: &str = ".config/stockade/settings.json";

/// Largest user settings file read.
pub const USER_SETTINGS_LIMIT: u64 = 256 * 1024;

/// What identifies one version of the file: a change to any of these means "read it again".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of_stat(st: &Stat) -> Stamp {
        #[allow(clippy::unnecessary_cast, clippy::cast_sign_loss)]
        Stamp {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as u64,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }

    fn of_metadata(md: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }
}

fn errno_io(path: &Path, err: Errno) -> UserSettingsError {
    UserSettingsError::io(path, &io::Error::from(err))
}

/// Opens a directory below `parent` without following a symlink, and checks its owner.
fn open_dir(
    parent: &impl rustix::fd::AsFd,
    name: &str,
    path: &Path,
    uid: u32,
) -> Result<Option<rustix::fd::OwnedFd>, UserSettingsError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        // With O_DIRECTORY, Linux reports a symlink as ENOTDIR rather than ELOOP.
        Err(Errno::LOOP | Errno::NOTDIR) => {
            let is_link = statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
            return Err(if is_link {
                UserSettingsError::Symlink {
                    path: path.to_owned(),
                }
            } else {
                UserSettingsError::WrongType {
                    path: path.to_owned(),
                    expected: "directory",
                }
            });
        }
        Err(err) => return Err(errno_io(path, err)),
    };
    let st = fstat(&fd).map_err(|e| errno_io(path, e))?;
    if st.st_uid != uid && st.st_uid != 0 {
        return Err(UserSettingsError::NotOwned {
            path: path.to_owned(),
            owner: st.st_uid,
            uid,
        });
    }
    Ok(Some(fd))
}

/// Reads and parses the file; `Ok(None)` when it does not exist. Also returns the stamp of the
/// file actually read, so the cache compares against exactly what was parsed.
fn read_with_stamp(
    who: &UserContext,
) -> (
    Result<Option<UserSettings>, UserSettingsError>,
    Option<Stamp>,
) {
    let mut stamp = None;
    let result = read_inner(who, &mut stamp);
    (result, stamp)
}

fn read_inner(
    who: &UserContext,
    stamp: &mut Option<Stamp>,
) -> Result<Option<UserSettings>, UserSettingsError> {
    let home = match openat(
        CWD,
        &who.home,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(err) => return Err(errno_io(&who.home, err)),
    };
    let mut path = who.home.clone();
    let mut dir = home;
    let components: Vec<&str> = USER_SETTINGS_PATH.split('/').collect();
    let Some((file_name, dirs)) = components.split_last() else {
        return Ok(None);
    };
    for name in dirs {
        path.push(name);
        match open_dir(&dir, name, &path, who.uid)? {
            Some(fd) => dir = fd,
            None => return Ok(None),
        }
    }
    path.push(file_name);
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match openat(&dir, *file_name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => return Err(UserSettingsError::Symlink { path }),
        Err(err) => return Err(errno_io(&path, err)),
    };
    let st = fstat(&fd).map_err(|e| errno_io(&path, e))?;
    *stamp = Some(Stamp::of_stat(&st));
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(UserSettingsError::WrongType {
            path,
            expected: "regular file",
        });
    }
    if st.st_uid != who.uid {
        return Err(UserSettingsError::NotOwned {
            path,
            owner: st.st_uid,
            uid: who.uid,
        });
    }
    if st.st_mode & 0o022 != 0 {
        return Err(UserSettingsError::WritableByOthers { path });
    }
    #[allow(clippy::cast_sign_loss)]
    let size = st.st_size.max(0) as u64;
    if size > USER_SETTINGS_LIMIT {
        return Err(UserSettingsError::TooLarge {
            path,
            size,
            limit: USER_SETTINGS_LIMIT,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    std::fs::File::from(fd)
        .take(USER_SETTINGS_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| UserSettingsError::io(&path, &e))?;
    if bytes.len() as u64 > USER_SETTINGS_LIMIT {
        return Err(UserSettingsError::TooLarge {
            path,
            size: bytes.len() as u64,
            limit: USER_SETTINGS_LIMIT,
        });
    }
    let name = path.display().to_string();
    Ok(Some(UserSettings::parse(&name, &bytes)?))
}

impl UserSettings {
    /// Reads `~/.config/stockade/settings.json` for this user: `Ok(None)` when the file (or a
    /// directory on the way) does not exist. See the module docs for the checks.
    pub fn read_for(who: &UserContext) -> Result<Option<Self>, UserSettingsError> {
        read_with_stamp(who).0
    }

    /// Where the settings file of this user is.
    pub fn path_for(who: &UserContext) -> PathBuf {
        who.home.join(USER_SETTINGS_PATH)
    }
}

type CachedResult = Result<Option<Arc<UserSettings>>, UserSettingsError>;

#[derive(Debug)]
struct Entry {
    /// The settings path this entry is for (a user's home can change).
    path: PathBuf,
    /// The file that was read, `None` when there was none.
    stamp: Option<Stamp>,
    result: CachedResult,
    /// When the file was last stat'ed, in nanoseconds since the cache's epoch.
    checked: AtomicU64,
}

/// User settings per uid, re-read only when the file changes.
///
/// `get` costs a map lookup while the last check is younger than the interval (one second by
/// default), then one `lstat` of the settings path; only a changed (dev, inode, size, mtime,
/// ctime) triggers a read. A user's changes therefore apply within about a second. Errors are
/// cached too, so a broken file is not re-parsed on every request.
#[derive(Debug)]
pub struct UserSettingsCache {
    interval: Duration,
    epoch: Instant,
    entries: RwLock<HashMap<u32, Arc<Entry>>>,
}

impl Default for UserSettingsCache {
    fn default() -> Self {
        Self::new()
    }
}

impl UserSettingsCache {
    /// A cache that looks at each user's file at most once per second.
    pub fn new() -> Self {
        Self::with_interval(Duration::from_secs(1))
    }

    /// A cache that looks at each user's file at most once per `interval` (zero: every call).
    pub fn with_interval(interval: Duration) -> Self {
        UserSettingsCache {
            interval,
            epoch: Instant::now(),
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The user's settings: `Ok(None)` when they have no settings file.
    pub fn get(&self, who: &UserContext) -> CachedResult {
        let path = UserSettings::path_for(who);
        let now = self.now();
        let interval = u64::try_from(self.interval.as_nanos()).unwrap_or(u64::MAX);
        let entry = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&who.uid)
            .cloned();
        if let Some(entry) = entry.as_ref().filter(|e| e.path == path) {
            let checked = entry.checked.load(Ordering::Relaxed);
            if now.saturating_sub(checked) < interval {
                return entry.result.clone();
            }
            // A cheap change check: one lstat, no open, no read. Intermediate symlinks do not
            // matter here; the read that a change triggers refuses them.
            let current = std::fs::symlink_metadata(&path)
                .ok()
                .map(|md| Stamp::of_metadata(&md));
            if current == entry.stamp {
                entry.checked.store(now, Ordering::Relaxed);
                return entry.result.clone();
            }
        }
        let (result, stamp) = read_with_stamp(who);
        let result: CachedResult = result.map(|s| s.map(Arc::new));
        let fresh = Arc::new(Entry {
            path,
            stamp,
            result: result.clone(),
            checked: AtomicU64::new(now),
        });
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(who.uid, fresh);
        result
    }

    /// Forgets one user's entry (the next `get` reads the file).
    pub fn invalidate(&self, uid: u32) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&uid);
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    const UID: u32 = 4242;

    struct Home {
        _dir: tempfile::TempDir,
        who: UserContext,
    }

    fn home() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let who = UserContext::new(UID, dir.path());
        std::os::unix::fs::chown(dir.path(), Some(UID), None).unwrap();
        Home { _dir: dir, who }
    }

    fn write(home: &Home, content: &str) -> PathBuf {
        let dir = home.who.home.join(".config/stockade");
        fs::create_dir_all(&dir).unwrap();
        for d in [home.who.home.join(".config"), dir.clone()] {
            std::os::unix::fs::chown(&d, Some(UID), None).unwrap();
        }
        let file = dir.join("settings.json");
        fs::write(&file, content).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&file, Some(UID), None).unwrap();
        file
    }

    fn running_as_root() -> bool {
        // Files a process creates belong to its effective uid.
        let dir = tempfile::tempdir().unwrap();
        fs::metadata(dir.path()).unwrap().uid() == 0
    }

    #[test]
    fn missing_file_is_none() {
        if !running_as_root() {
            return;
        }
        let h = home();
        assert!(UserSettings::read_for(&h.who).unwrap().is_none());
        let gone = UserContext::new(UID, "/nonexistent/home");
        assert!(UserSettings::read_for(&gone).unwrap().is_none());
    }

    #[test]
    fn reads_a_valid_file() {
        if !running_as_root() {
            return;
        }
        let h = home();
        write(&h, r#"{"enhancedContainerIsolation": {"value": false}}"#);
        let settings = UserSettings::read_for(&h.who).unwrap().unwrap();
        assert!(settings.source_name().ends_with(USER_SETTINGS_PATH));
    }

    #[test]
    fn refuses_symlinks_at_every_component() {
        if !running_as_root() {
            return;
        }
        let h = home();
        let file = write(&h, "{}");
        let secret = h.who.home.join("secret.json");
        fs::write(&secret, "{\"not\": \"yours\"}").unwrap();

        // The file itself.
        fs::remove_file(&file).unwrap();
        symlink(&secret, &file).unwrap();
        let err = UserSettings::read_for(&h.who).unwrap_err();
        assert!(matches!(err, UserSettingsError::Symlink { .. }), "{err}");
        fs::remove_file(&file).unwrap();

        // A directory on the way.
        let stockade = h.who.home.join(".config/stockade");
        fs::rename(&stockade, h.who.home.join("elsewhere")).unwrap();
        symlink(h.who.home.join("elsewhere"), &stockade).unwrap();
        let err = UserSettings::read_for(&h.who).unwrap_err();
        assert!(matches!(err, UserSettingsError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("symbolic link"));
    }

    #[test]
    fn refuses_files_of_other_users_and_odd_files() {
        if !running_as_root() {
            return;
        }
        let h = home();
        let file = write(&h, "{}");
        std::os::unix::fs::chown(&file, Some(0), None).unwrap();
        let err = UserSettings::read_for(&h.who).unwrap_err();
        assert_eq!(
            err,
            UserSettingsError::NotOwned {
                path: file.clone(),
                owner: 0,
                uid: UID
            }
        );

        std::os::unix::fs::chown(&file, Some(UID), None).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        let err = UserSettings::read_for(&h.who).unwrap_err();
        assert!(
            matches!(err, UserSettingsError::WritableByOthers { .. }),
            "{err}"
        );

        fs::remove_file(&file).unwrap();
        fs::create_dir(&file).unwrap();
        let err = UserSettings::read_for(&h.who).unwrap_err();
        assert!(
            matches!(
                err,
                UserSettingsError::WrongType {
                    expected: "regular file",
                    ..
                }
            ),
            "{err}"
        );
        fs::remove_dir(&file).unwrap();

        rustix::fs::mknodat(CWD, &file, FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
        std::os::unix::fs::chown(&file, Some(UID), None).unwrap();
        let err = UserSettings::read_for(&h.who).unwrap_err();
        assert!(matches!(err, UserSettingsError::WrongType { .. }), "{err}");
        fs::remove_file(&file).unwrap();

        let dir = h.who.home.join(".config");
        std::os::unix::fs::chown(&dir, Some(UID + 1), None).unwrap();
        let err = UserSettings::read_for(&h.who).unwrap_err();
        assert!(
            matches!(err, UserSettingsError::NotOwned { owner, .. } if owner == UID + 1),
            "{err}"
        );
    }

    #[test]
    fn size_limit_and_no_echo() {
        if !running_as_root() {
            return;
        }
        let h = home();
        let big = format!("{{\"x\": \"{}\"}}", "a".repeat(300 * 1024));
        write(&h, &big);
        let err = UserSettings::read_for(&h.who).unwrap_err();
        assert!(matches!(err, UserSettingsError::TooLarge { .. }), "{err}");

        write(&h, "root:$6$secrethash:19000:0:99999:7:::\n");
        let err = UserSettings::read_for(&h.who).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains(":1:1: (root): "), "{text}");
    }

    #[test]
    fn cache_rereads_only_on_change() {
        if !running_as_root() {
            return;
        }
        let h = home();
        let cache = UserSettingsCache::with_interval(Duration::ZERO);
        assert!(cache.get(&h.who).unwrap().is_none());
        write(&h, r#"{"blockDockerLoad": {"value": false}}"#);
        let first = cache.get(&h.who).unwrap().unwrap();
        let again = cache.get(&h.who).unwrap().unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "unchanged file must not be re-read"
        );
        write(
            &h,
            r#"{"blockDockerLoad": {"value": true}, "analyticsEnabled": {"value": true}}"#,
        );
        let changed = cache.get(&h.who).unwrap().unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        assert_eq!(changed.notes(), ["analyticsEnabled: no effect on Linux"]);

        // Rate limit: with a long interval, a change is not seen until invalidated.
        let slow = UserSettingsCache::with_interval(Duration::from_secs(3600));
        let a = slow.get(&h.who).unwrap().unwrap();
        write(&h, "{}");
        let b = slow.get(&h.who).unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        slow.invalidate(UID);
        let c = slow.get(&h.who).unwrap().unwrap();
        assert!(!Arc::ptr_eq(&a, &c));

        // Errors are cached and replaced when the file is fixed.
        write(&h, "{");
        assert!(cache.get(&h.who).is_err());
        write(&h, "{}");
        assert!(cache.get(&h.who).unwrap().is_some());
    }
}
