//! Embeds the shipped SQL models (`queries/`) and report definitions (`reports/`) in the binary, so
//! an installed spotcost needs no source tree: writes `$OUT_DIR/shipped.rs`, a list of
//! (relative path, contents) pairs read by `src/shipped.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(folder: &Path, extension: &str, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, extension, files);
        } else if path.extension().and_then(|e| e.to_str()) == Some(extension) {
            files.push(path);
        }
    }
}

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect(&root.join("queries"), "sql", &mut files);
    collect(&root.join("reports"), "toml", &mut files);
    files.sort();
    let mut code = String::from("pub static FILES: &[(&str, &str)] = &[\n");
    for path in &files {
        let relative = path.strip_prefix(&root).expect("under the manifest dir");
        // Relative to the manifest dir, evaluated when the crate compiles: checkouts at other paths
        // share one target dir, and cargo may reuse this output without re-running the script.
        let relative = relative.to_string_lossy().replace('\\', "/");
        let _ = writeln!(
            code,
            "    ({relative:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), {:?}))),",
            format!("/{relative}")
        );
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("shipped.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
    println!("cargo:rerun-if-changed=queries");
    println!("cargo:rerun-if-changed=reports");
    println!("cargo:rerun-if-changed=build.rs");
}
