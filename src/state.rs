//! The state file: what this stack has created, written after every change.
//!
//! Crash-safety rests on three rules kept here:
//! 1. Intent is recorded before acting: an entry is saved as `planned` before its create call
//!    and as `created` (with its ARN) after, so a crash in between leaves a name `destroy` can
//!    still try (not-found counts as done) and `up` can adopt.
//! 2. Every save is atomic (temp file, fsync, rename, fsync of the directory) with mode 0600,
//!    so a crash never leaves a half-written file.
//! 3. A lock file held with an OS lock keeps two thumbctl processes off one stack; the OS drops
//!    it when the holder dies, so there are no stale locks to clean up.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::stack::Settings;

pub const STATE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "state file {path} is not valid thumbctl state ({reason}). It was left untouched.\n  \
         hint: restore it from a backup, or move it aside and run `thumbctl status --orphans` to find this stack's resources by their tags"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "state file {path} has format version {found}; this thumbctl understands version {STATE_VERSION}. It was left untouched.\n  \
         hint: use the thumbctl release that wrote it"
    )]
    Version { path: PathBuf, found: u32 },
    #[error(
        "state file {path} belongs to stack `{found}`, not `{expected}`; it was left untouched"
    )]
    WrongStack {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "stack `{stack}` is in use by another thumbctl process ({holder}).\n  \
         hint: wait for it to finish; the lock is released automatically when that process ends"
    )]
    Locked { stack: String, holder: String },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// About to be created: the name is decided, the create call may or may not have happened.
    Planned,
    /// Exists (or existed when last seen).
    Created,
    /// Left in place on purpose by `destroy --keep-buckets`.
    Kept,
}

/// One resource: enough to find it and delete it without any other information.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub region: String,
    pub status: Status,
    /// Kind-specific facts needed for deletion (e.g. the role a policy belongs to).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub stack: String,
    pub region: String,
    pub account: String,
    pub suffix: String,
    pub created_at: String,
    pub settings: Settings,
    /// Keyed by the step id (`source-bucket`, `function`, ...), so each step owns one entry.
    pub resources: BTreeMap<String, Entry>,
}

/// The locked, loaded state of one stack.
pub struct StateStore {
    path: PathBuf,
    _lock: File,
    state: Mutex<Option<State>>,
}

impl StateStore {
    pub fn path_for(dir: &Path, stack: &str) -> PathBuf {
        dir.join(format!("{stack}.json"))
    }

    /// Takes the stack's lock, then reads its state if there is one.
    pub fn open(dir: &Path, stack: &str, command: &str) -> Result<Arc<StateStore>, StateError> {
        fs::create_dir_all(dir).map_err(io("create state directory", dir))?;
        let lock = acquire_lock(dir, stack, command)?;
        let path = Self::path_for(dir, stack);
        let state = read_state(&path, stack)?;
        Ok(Arc::new(StateStore {
            path,
            _lock: lock,
            state: Mutex::new(state),
        }))
    }

    /// Reads a stack's state without taking the lock: for read-only commands like `status`,
    /// which must work while `up` runs. Saves are atomic renames, so the read is consistent.
    pub fn read(dir: &Path, stack: &str) -> Result<Option<State>, StateError> {
        read_state(&Self::path_for(dir, stack), stack)
    }

    /// Removes the lock file once the stack is gone, so an empty state directory stays empty.
    pub fn remove_lock_file(&self, dir: &Path, stack: &str) {
        let _ = fs::remove_file(dir.join(format!("{stack}.lock")));
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn guard(&self) -> MutexGuard<'_, Option<State>> {
        // A panic while holding the lock cannot leave the state half-updated on disk (saves are
        // atomic), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> Option<State> {
        self.guard().clone()
    }

    /// Installs a brand-new state and saves it.
    pub fn init(&self, state: State) -> Result<(), StateError> {
        let mut g = self.guard();
        write_atomic(&self.path, &state)?;
        *g = Some(state);
        Ok(())
    }

    /// Changes the state and saves it before returning, so the caller's next AWS call
    /// happens only once the change is on disk.
    pub fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> Result<R, StateError> {
        let mut g = self.guard();
        let Some(state) = g.as_mut() else {
            return Err(StateError::Corrupt {
                path: self.path.clone(),
                reason: "no state loaded".into(),
            });
        };
        let before = state.clone();
        let r = f(state);
        if *state != before {
            write_atomic(&self.path, state)?;
        }
        Ok(r)
    }

    pub fn entry(&self, id: &str) -> Option<Entry> {
        self.guard()
            .as_ref()
            .and_then(|s| s.resources.get(id).cloned())
    }

    /// Removes the state file: only called when nothing it recorded is left.
    pub fn remove_file(&self) -> Result<(), StateError> {
        let mut g = self.guard();
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StateError::Io {
                    action: "remove state file",
                    path: self.path.clone(),
                    source: e,
                });
            }
        }
        *g = None;
        Ok(())
    }
}

fn acquire_lock(dir: &Path, stack: &str, command: &str) -> Result<File, StateError> {
    let path = dir.join(format!("{stack}.lock"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io("open lock file", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                "holder unknown".to_owned()
            } else {
                holder.to_owned()
            };
            return Err(StateError::Locked {
                stack: stack.to_owned(),
                holder,
            });
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(StateError::Io {
                action: "lock",
                path,
                source: e,
            });
        }
    }
    // Tell a would-be second runner who holds the stack.
    let started = crate::now_rfc3339();
    let info = format!(
        "pid {}, `thumbctl {command}`, since {started}",
        std::process::id()
    );
    file.set_len(0).map_err(io("write lock file", &path))?;
    file.rewind().map_err(io("write lock file", &path))?;
    file.write_all(info.as_bytes())
        .map_err(io("write lock file", &path))?;
    Ok(file)
}

fn read_state(path: &Path, stack: &str) -> Result<Option<State>, StateError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StateError::Io {
                action: "read state file",
                path: path.to_owned(),
                source: e,
            });
        }
    };
    // Check the version before the full shape, so a future format says "version" and not "corrupt".
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    let found = value.get("version").and_then(|v| v.as_u64());
    match found {
        Some(v) if v == u64::from(STATE_VERSION) => {}
        Some(v) => {
            return Err(StateError::Version {
                path: path.to_owned(),
                found: u32::try_from(v).unwrap_or(u32::MAX),
            });
        }
        None => {
            return Err(StateError::Corrupt {
                path: path.to_owned(),
                reason: "no `version` field".into(),
            });
        }
    }
    let state: State = serde_json::from_value(value).map_err(|e| StateError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if state.stack != stack {
        return Err(StateError::WrongStack {
            path: path.to_owned(),
            found: state.stack,
            expected: stack.to_owned(),
        });
    }
    Ok(Some(state))
}

fn write_atomic(path: &Path, state: &State) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension(format!("json.tmp.{}", std::process::id()));
    let mut json = serde_json::to_vec_pretty(state).map_err(|e| StateError::Io {
        action: "serialise state",
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })?;
    json.push(b'\n');
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("write state file", &tmp))?;
        f.write_all(&json).map_err(io("write state file", &tmp))?;
        f.sync_all().map_err(io("sync state file", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(io("replace state file", path))?;
    if let Ok(d) = File::open(dir) {
        // Makes the rename itself durable; a failure here loses nothing already written.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample(stack: &str) -> State {
        State {
            version: STATE_VERSION,
            stack: stack.into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            suffix: "abcd1234".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            settings: Settings::default(),
            resources: BTreeMap::new(),
        }
    }

    #[test]
    fn save_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path(), "s1", "test").unwrap();
        store.init(sample("s1")).unwrap();
        store
            .update(|s| {
                s.resources.insert(
                    "table".into(),
                    Entry {
                        kind: "table".into(),
                        name: "t".into(),
                        arn: None,
                        region: "us-east-1".into(),
                        status: Status::Planned,
                        extra: BTreeMap::new(),
                    },
                )
            })
            .unwrap();
        let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = read_state(store.path(), "s1").unwrap().unwrap();
        assert_eq!(back.resources["table"].status, Status::Planned);
        // No temp files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn second_open_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _first = StateStore::open(dir.path(), "s2", "up").unwrap();
        match StateStore::open(dir.path(), "s2", "destroy") {
            Err(StateError::Locked { holder, .. }) => {
                assert!(holder.contains("thumbctl up"), "{holder}")
            }
            other => panic!("expected Locked, got {:?}", other.err()),
        }
        // A different stack in the same directory is independent.
        assert!(StateStore::open(dir.path(), "s3", "up").is_ok());
    }

    #[test]
    fn corrupt_and_foreign_files_are_refused_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = StateStore::path_for(dir.path(), "s4");
        fs::write(&path, b"{\"version\": 1, \"stack\": \"s4\", \"resou").unwrap();
        assert!(matches!(
            StateStore::open(dir.path(), "s4", "up").err(),
            Some(StateError::Corrupt { .. })
        ));
        fs::write(&path, b"{\"version\": 7}").unwrap();
        assert!(matches!(
            StateStore::open(dir.path(), "s4", "up").err(),
            Some(StateError::Version { found: 7, .. })
        ));
        assert_eq!(fs::read(&path).unwrap(), b"{\"version\": 7}");
    }
}
