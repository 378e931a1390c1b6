//! The SQL models and report definitions built into the binary (by `build.rs`), under the virtual
//! folder `(built-in)/`, so an installed spotcost runs without its source tree. [`files`] lists a
//! real folder or a built-in one alike; the loaders in `models/` and `report/` read through it.

use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/shipped.rs"));
}

/// The prefix of built-in folders, shown as is in error messages.
pub const BUILT_IN: &str = "(built-in)";

/// The built-in copy of `queries` or `reports`.
pub fn built_in(name: &str) -> PathBuf {
    Path::new(BUILT_IN).join(name)
}

/// The files directly in `folder` whose extension is `extension`, with their text, sorted by path.
/// A missing real folder is `NotFound`; a built-in one that holds nothing is empty.
pub fn files(folder: &Path, extension: &str) -> std::io::Result<Vec<(PathBuf, String)>> {
    if let Ok(inside) = folder.strip_prefix(BUILT_IN) {
        return Ok(embedded::FILES
            .iter()
            .map(|(path, text)| (Path::new(path), *text))
            .filter(|(path, _)| {
                path.parent() == Some(inside)
                    && path.extension().and_then(|e| e.to_str()) == Some(extension)
            })
            .map(|(path, text)| (Path::new(BUILT_IN).join(path), text.to_owned()))
            .collect());
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if path.is_file() && path.extension().and_then(|e| e.to_str()) == Some(extension) {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            found.push((path, text));
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary carries exactly what the source tree has.
    #[test]
    fn the_built_in_copies_match_the_source_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (folder, extension) in [
            ("queries/staging", "sql"),
            ("queries/marts", "sql"),
            ("queries/tests", "sql"),
            ("queries/exports", "sql"),
            ("reports", "toml"),
        ] {
            let on_disk = files(&root.join(folder), extension).unwrap();
            let built_in = files(&Path::new(BUILT_IN).join(folder), extension).unwrap();
            assert!(!on_disk.is_empty(), "{folder}");
            let strip = |files: Vec<(PathBuf, String)>, prefix: &Path| -> Vec<(PathBuf, String)> {
                files
                    .into_iter()
                    .map(|(p, t)| (p.strip_prefix(prefix).unwrap().to_owned(), t))
                    .collect()
            };
            assert_eq!(
                strip(on_disk, root),
                strip(built_in, Path::new(BUILT_IN)),
                "{folder}"
            );
        }
    }
}
