//! Embeds every file under `assets/` in the binary: writes `$OUT_DIR/assets.rs`, a table of
//! `(path, include_bytes!(...))`, so that adding a file to `assets/` is all it takes to ship it.
//! Symbolic links and names that are not plain ASCII path segments are refused: the table is
//! what the server answers `/assets/...` with.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, "", &mut files);
    files.sort();
    let mut table = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (name, path) in &files {
        writeln!(table, "    ({name:?}, include_bytes!({path:?})),").expect("write to a String");
    }
    table.push_str("];\n");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out).join("assets.rs"), table).expect("write assets.rs");
}

fn walk(dir: &Path, prefix: &str, files: &mut Vec<(String, String)>) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let entries = std::fs::read_dir(dir).expect("read the assets directory");
    for entry in entries {
        let entry = entry.expect("read an assets entry");
        let name = entry
            .file_name()
            .into_string()
            .expect("asset names are UTF-8");
        assert!(
            !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "asset name {name:?}: use letters, digits, '-', '_' and '.' only"
        );
        let kind = entry.file_type().expect("read an asset's type");
        let path = entry.path();
        let name = format!("{prefix}{name}");
        if kind.is_dir() {
            walk(&path, &format!("{name}/"), files);
        } else if kind.is_file() {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push((name, path.display().to_string()));
        } else {
            panic!("asset {name:?} is neither a file nor a directory");
        }
    }
}
