//! Operator-chosen extensions: a JSON file of string pairs, or a directory of such files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::extensions::{DropReason, extension_problem};
use common::report::Extension;

/// The extensions read, sorted by key, and a warning for everything left out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Valid pairs, sorted by key.
    pub extensions: Vec<Extension>,
    /// What was skipped and why, naming the file and the key (never the value).
    pub warnings: Vec<String>,
}

/// Reads `path`: a JSON object of string to string, or a directory of such files (top-level
/// files only, names starting with `.` ignored, read in sorted order). Nothing here is fatal:
/// every problem becomes a warning and the report goes out with what is valid.
pub fn load(path: &Path) -> Loaded {
    let mut loaded = Loaded::default();
    let mut pairs: BTreeMap<String, (String, PathBuf)> = BTreeMap::new();
    let files = match files(path) {
        Ok(files) => files,
        Err(error) => {
            loaded
                .warnings
                .push(format!("extensions {}: {error}", path.display()));
            return loaded;
        }
    };
    for file in files {
        let object = match read_object(&file) {
            Ok(object) => object,
            Err(error) => {
                loaded.warnings.push(format!(
                    "extensions file {}: {error}; skipped",
                    file.display()
                ));
                continue;
            }
        };
        for (key, value) in object {
            let warn = |why: &str| {
                format!(
                    "extensions file {}: key {key:?} {why}; skipped",
                    file.display()
                )
            };
            let serde_json::Value::String(value) = value else {
                loaded.warnings.push(warn("does not have a string value"));
                continue;
            };
            let candidate = Extension {
                name: key.clone(),
                value,
            };
            if let Some(reason) = extension_problem(&candidate) {
                loaded.warnings.push(warn(match reason {
                    DropReason::InvalidName => {
                        "is not a Kubernetes qualified name ([prefix/]name, name at most 63 characters)"
                    }
                    DropReason::ValueTooLong => "has a value longer than 1 KiB",
                    DropReason::ValueNotPrintable => "has a value with control characters",
                    DropReason::Duplicate => "is repeated",
                }));
                continue;
            }
            if let Some((_, first)) = pairs.get(&key) {
                loaded
                    .warnings
                    .push(warn(&format!("was already set by {}", first.display())));
                continue;
            }
            pairs.insert(key, (candidate.value, file.clone()));
        }
    }
    loaded.extensions = pairs
        .into_iter()
        .map(|(name, (value, _))| Extension { name, value })
        .collect();
    loaded
}

/// The files to read: `path` itself, or the visible regular files directly in it, sorted.
fn files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let metadata = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // Follow symlinks: a mounted ConfigMap's files are links into a `..data` directory.
        if !hidden && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

fn read_object(file: &Path) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let text = std::fs::read(file).map_err(|e| e.to_string())?;
    match serde_json::from_slice(&text) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        Ok(_) => Err("is not a JSON object of string pairs".into()),
        Err(error) => Err(format!("is not valid JSON ({error})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(loaded: &Loaded) -> Vec<(&str, &str)> {
        loaded
            .extensions
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect()
    }

    #[test]
    fn a_single_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ext.json");
        std::fs::write(&file, r#"{"example.com/team": "platform", "tier": "gold"}"#).unwrap();
        let loaded = load(&file);
        assert_eq!(
            names(&loaded),
            [("example.com/team", "platform"), ("tier", "gold")]
        );
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn a_directory_sorted_with_dot_files_ignored_and_first_value_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.json"), r#"{"z": "1", "a": "from-b"}"#).unwrap();
        std::fs::write(dir.path().join("a.json"), r#"{"a": "from-a"}"#).unwrap();
        std::fs::write(dir.path().join(".hidden.json"), r#"{"hidden": "x"}"#).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/c.json"), r#"{"nested": "x"}"#).unwrap();
        let loaded = load(dir.path());
        assert_eq!(names(&loaded), [("a", "from-a"), ("z", "1")]);
        assert_eq!(loaded.warnings.len(), 1);
        assert!(
            loaded.warnings[0].contains("already set"),
            "{:?}",
            loaded.warnings
        );
        assert!(loaded.warnings[0].contains("b.json"));
    }

    #[test]
    fn bad_files_and_pairs_are_warnings_naming_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1-broken.json"), "{not json").unwrap();
        std::fs::write(dir.path().join("2-list.json"), r#"["a"]"#).unwrap();
        std::fs::write(
            dir.path().join("3-pairs.json"),
            format!(
                r#"{{"ok": "yes", "count": 3, "bad key": "v", "example.com/big": "{}"}}"#,
                "x".repeat(2000)
            ),
        )
        .unwrap();
        let loaded = load(dir.path());
        assert_eq!(names(&loaded), [("ok", "yes")]);
        let warnings = loaded.warnings.join("\n");
        for expected in [
            "1-broken.json: is not valid JSON",
            "2-list.json: is not a JSON object",
            "key \"count\" does not have a string value",
            "key \"bad key\" is not a Kubernetes qualified name",
            "key \"example.com/big\" has a value longer than 1 KiB",
        ] {
            assert!(
                warnings.contains(expected),
                "{expected} not in:\n{warnings}"
            );
        }
        assert!(!warnings.contains("xxxx"), "values are never printed");
    }

    #[test]
    fn an_empty_directory_and_a_missing_path() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), Loaded::default());
        let missing = load(&dir.path().join("nope"));
        assert!(missing.extensions.is_empty());
        assert_eq!(missing.warnings.len(), 1);
        assert!(missing.warnings[0].contains("nope"));
    }
}
