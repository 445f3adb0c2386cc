//! Packing and unpacking a slug-sized tree through `wharf_tenant_fs` (every entry beneath a
//! directory handle, no link followed) against the `tar` crate's own path-based unpacking of
//! the same archive, in the same run: what the safety costs. Works in `/dev/shm`.
//!
//! `cargo run --release -p wharf-tenant-fs --example archive_bench -- [FILES] [ROUNDS]`
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use wharf_slugignore::SlugIgnore;
use wharf_tenant_fs::archive::{pack_slug, unpack, LinkPolicy};

fn main() {
    let mut args = std::env::args().skip(1);
    let files: usize = args.next().map_or(20_000, |a| a.parse().unwrap());
    let rounds: usize = args.next().map_or(5, |a| a.parse().unwrap());
    // In memory where the machine has it: the disk's writeback would hide the file system
    // calls being compared.
    let shm = Path::new("/dev/shm");
    let work = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let app = work.path().join("app");
    make_tree(&app, files);
    let slug = work.path().join("slug.tar.zst");

    let mut pack = Vec::new();
    let mut pack_theirs = Vec::new();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 0..rounds {
        let started = Instant::now();
        pack_slug(&app, &SlugIgnore::default(), &slug, u64::MAX).unwrap();
        pack.push(started.elapsed());

        let started = Instant::now();
        let out = std::fs::File::create(work.path().join("theirs.tar.zst")).unwrap();
        let encoder = zstd::stream::write::Encoder::new(out, 3).unwrap();
        let mut builder = tar::Builder::new(encoder);
        builder.follow_symlinks(false);
        builder.append_dir_all("", &app).unwrap();
        builder.into_inner().unwrap().finish().unwrap();
        pack_theirs.push(started.elapsed());

        let dest = work.path().join(format!("ours-{round}"));
        let started = Instant::now();
        let unpacked = unpack(&slug, &dest, LinkPolicy::AnyTarget, u64::MAX).unwrap();
        assert!(unpacked > 0, "file content was unpacked");
        ours.push(started.elapsed());

        let dest = work.path().join(format!("theirs-{round}"));
        std::fs::create_dir(&dest).unwrap();
        let started = Instant::now();
        let decoder =
            zstd::stream::read::Decoder::new(std::fs::File::open(&slug).unwrap()).unwrap();
        let mut archive = tar::Archive::new(decoder);
        archive.set_preserve_permissions(true);
        archive.set_overwrite(true);
        for entry in archive.entries().unwrap() {
            assert!(entry.unwrap().unpack_in(&dest).unwrap());
        }
        theirs.push(started.elapsed());
    }
    println!("{files} files, median of {rounds} rounds");
    println!("| what | time |");
    println!("|---|---|");
    println!(
        "| pack_slug (walk beneath handles, tar, zstd) | {:?} |",
        median(&mut pack)
    );
    println!(
        "| tar crate append_dir_all (path-based, the old way) | {:?} |",
        median(&mut pack_theirs)
    );
    println!(
        "| unpack (tenant-fs, beneath handles) | {:?} |",
        median(&mut ours)
    );
    println!(
        "| tar crate unpack_in (path-based, the old way) | {:?} |",
        median(&mut theirs)
    );
}

/// `files` small files in directories of 50, two levels deep, with a link in each directory.
fn make_tree(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("d{}/e{}", i / 2500, (i / 50) % 50));
        if i % 50 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::symlink("/usr/bin/python3", dir.join("python")).unwrap();
        }
        std::fs::write(
            dir.join(format!("f{i}.py")),
            format!("print({i})\n").repeat(20),
        )
        .unwrap();
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}
