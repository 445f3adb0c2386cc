//! Embeds the built-in buildpacks (`buildpacks/<name>/` at the workspace root) in the binary,
//! so that one `wharf` binary carries them; the server writes them out at start.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const BUILTIN: &[&str] = &["ruby", "python", "nodejs", "go", "static", "procfile"];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../../buildpacks")
        .canonicalize()
        .expect("the buildpacks directory at the workspace root");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    // One source for the helpers every buildpack shares (output, the dyno's memory): each
    // buildpack gets its own copy of every `shared/` file in its `lib/`.
    let shared_dir = root.join("shared");
    println!("cargo:rerun-if-changed={}", shared_dir.display());
    let mut shared: Vec<PathBuf> = std::fs::read_dir(&shared_dir)
        .expect("read buildpacks/shared")
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    shared.sort();
    for name in BUILTIN {
        collect(&root, &root.join(name), &mut files);
        for file in &shared {
            let file_name = file.file_name().expect("a file name").to_string_lossy();
            files.push((format!("{name}/lib/{file_name}"), file.clone(), 0o644));
        }
    }
    files.sort();
    let mut code =
        String::from("/// Built-in buildpack files: (path under buildpacks/, contents, mode).\n");
    code.push_str("pub const FILES: &[(&str, &[u8], u32)] = &[\n");
    for (relative, full, mode) in files {
        println!("cargo:rerun-if-changed={}", full.display());
        writeln!(
            code,
            "    ({relative:?}, include_bytes!({:?}), 0o{mode:o}),",
            full.display().to_string()
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"))
        .join("builtin_buildpacks.rs");
    std::fs::write(out, code).expect("write the embedded file list");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf, u32)>) {
    use std::os::unix::fs::PermissionsExt;
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in std::fs::read_dir(dir).expect("read a buildpack directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let relative = path
                .strip_prefix(root)
                .expect("under the buildpacks directory")
                .to_string_lossy()
                .into_owned();
            let mode = std::fs::metadata(&path)
                .expect("file metadata")
                .permissions()
                .mode()
                & 0o777;
            files.push((relative, path, mode));
        }
    }
}
