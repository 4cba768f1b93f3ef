//! The recordings directory: one `ID.webm` per participant and recording, beside an `ID.meta`
//! of `key=value` lines saying whose it is, when it started, how long it is so far and whether
//! it is still being written, complete or failed. The `.meta` is rewritten (to a temporary file,
//! then renamed) each time the recorder flushes, so after a crash it still tells the truth up to
//! the last flush.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A recording file as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingFile {
    pub id: String,
    pub room: String,
    pub participant: String,
    pub name: String,
    /// "video", "audio", or both.
    pub kinds: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub started_ms: u64,
    pub duration_ms: u64,
    pub size: u64,
    /// "recording", "complete", "failed", or "interrupted" (the server stopped while writing it).
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// What the recorder knows of a file while writing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) id: String,
    pub(crate) room: String,
    pub(crate) participant: String,
    pub(crate) name: String,
    pub(crate) kinds: Vec<String>,
    pub(crate) started_ms: u64,
    pub(crate) duration_ms: u64,
    pub(crate) state: &'static str,
    pub(crate) error: Option<String>,
}

/// Why a recording could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("no recording {0:?}")]
    NotFound(String),
    #[error("recording {0:?} is still being written; stop the room's recording first")]
    InProgress(String),
    #[error("could not delete recording {0:?}: {1}")]
    Io(String, io::Error),
}

#[derive(Clone, Debug)]
pub(crate) struct Catalog {
    dir: PathBuf,
}

impl Catalog {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn media_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.webm"))
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.meta"))
    }

    pub(crate) fn write_meta(&self, meta: &Meta) -> io::Result<()> {
        let clean = |s: &str| s.replace(['\n', '\r'], " ");
        let mut text = format!(
            "room={}\nparticipant={}\nname={}\nkinds={}\nstarted_ms={}\nduration_ms={}\nstate={}\n",
            clean(&meta.room),
            clean(&meta.participant),
            clean(&meta.name),
            meta.kinds.join(","),
            meta.started_ms,
            meta.duration_ms,
            meta.state,
        );
        if let Some(error) = &meta.error {
            text.push_str(&format!("error={}\n", clean(error)));
        }
        let tmp = self.dir.join(format!(".{}.meta.tmp", meta.id));
        let replaced =
            fs::write(&tmp, &text).and_then(|()| fs::rename(&tmp, self.meta_path(&meta.id)));
        match replaced {
            Ok(()) => Ok(()),
            Err(e) => {
                // A full disk has no room for a new file, but the old one's block takes the new
                // text (a `.meta` is far smaller than a block): so a failure can still be told.
                let _ = fs::remove_file(&tmp);
                self.overwrite_meta(&meta.id, &text).map_err(|_| e)
            }
        }
    }

    /// Rewrites an existing `.meta` in place, padded with blank lines to its old length.
    fn overwrite_meta(&self, id: &str, text: &str) -> io::Result<()> {
        use std::io::Write;
        let path = self.meta_path(id);
        let old = fs::metadata(&path)?.len() as usize;
        let mut padded = text.to_owned();
        while padded.len() < old {
            padded.push('\n');
        }
        let mut file = fs::OpenOptions::new().write(true).open(&path)?;
        file.write_all(padded.as_bytes())?;
        file.sync_data()
    }

    /// Every recording with its `.meta`, newest first.
    pub(crate) fn list(&self) -> Vec<RecordingFile> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<RecordingFile> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".meta")?;
                valid_id(id).then(|| self.read(id))?
            })
            .collect();
        files.sort_by(|a, b| b.started_ms.cmp(&a.started_ms).then(a.id.cmp(&b.id)));
        files
    }

    /// One recording, if `id` names one.
    pub(crate) fn read(&self, id: &str) -> Option<RecordingFile> {
        if !valid_id(id) {
            return None;
        }
        let text = fs::read_to_string(self.meta_path(id)).ok()?;
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or("")
                .to_owned()
        };
        let size = fs::metadata(self.media_path(id)).map_or(0, |m| m.len());
        Some(RecordingFile {
            id: id.to_owned(),
            room: field("room"),
            participant: field("participant"),
            name: field("name"),
            kinds: field("kinds")
                .split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect(),
            started_ms: field("started_ms").parse().unwrap_or(0),
            duration_ms: field("duration_ms").parse().unwrap_or(0),
            size,
            state: field("state"),
            error: Some(field("error")).filter(|e| !e.is_empty()),
        })
    }

    /// Marks files left `recording` by a server that stopped without closing them (a crash)
    /// as `interrupted`: nothing writes them any more. Call before any recording starts.
    pub(crate) fn recover(&self) -> usize {
        let mut recovered = 0;
        for file in self.list().into_iter().filter(|f| f.state == "recording") {
            let meta = Meta {
                id: file.id.clone(),
                room: file.room,
                participant: file.participant,
                name: file.name,
                kinds: file.kinds,
                started_ms: file.started_ms,
                duration_ms: file.duration_ms,
                state: "interrupted",
                error: Some(
                    "the server stopped while recording; the file plays up to its last flush"
                        .into(),
                ),
            };
            if self.write_meta(&meta).is_ok() {
                recovered += 1;
            }
        }
        recovered
    }

    /// Removes a recording's file and its `.meta`; refused while it is being written.
    pub(crate) fn delete(&self, id: &str) -> Result<(), DeleteError> {
        let file = self
            .read(id)
            .ok_or_else(|| DeleteError::NotFound(id.to_owned()))?;
        if file.state == "recording" {
            return Err(DeleteError::InProgress(id.to_owned()));
        }
        match fs::remove_file(self.media_path(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(DeleteError::Io(id.to_owned(), e)),
        }
        fs::remove_file(self.meta_path(id)).map_err(|e| DeleteError::Io(id.to_owned(), e))
    }
}

/// Ids are made by the recorder (`<start ms>-<participant id>`); anything else, a path above
/// all, names no recording.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=100).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, state: &'static str) -> Meta {
        Meta {
            id: id.to_owned(),
            room: "r".into(),
            participant: "p".into(),
            name: "Ada\nLovelace".into(),
            kinds: vec!["video".into(), "audio".into()],
            started_ms: 5,
            duration_ms: 1000,
            state,
            error: None,
        }
    }

    #[test]
    fn a_recording_is_listed_read_and_deleted_by_its_id_only() {
        let dir = std::env::temp_dir().join(format!("roomcast-catalog-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let catalog = Catalog::new(dir.clone());
        catalog.write_meta(&meta("5-p", "complete")).unwrap();
        fs::write(catalog.media_path("5-p"), b"webm").unwrap();
        let files = catalog.list();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].name, "Ada Lovelace");
        assert_eq!(files[0].kinds, ["video", "audio"]);
        assert_eq!(files[0].size, 4);
        assert!(catalog.read("../5-p").is_none());
        assert!(matches!(
            catalog.delete("nope"),
            Err(DeleteError::NotFound(_))
        ));
        catalog.write_meta(&meta("6-p", "recording")).unwrap();
        assert!(matches!(
            catalog.delete("6-p"),
            Err(DeleteError::InProgress(_))
        ));
        catalog.delete("5-p").unwrap();
        assert_eq!(catalog.list().len(), 1);
        fs::remove_dir_all(dir).unwrap();
    }
}
