//! Fuzzes the archive unpacker (`wharf_tenant_fs::archive::unpack`), which the root server runs
//! on tenants' source tarballs and slugs. The first byte of an input picks how the rest is
//! read: odd, the rest describes entries that are written as a tar file (raw headers, so
//! hostile names reach the unpacker as they are; GNU long names, PAX records, sparse files;
//! plain, gzip or zstd), so that the fuzzer reaches deep into the unpacker rather than into
//! tar's checksum; even, the rest is a file as it is, after a byte choosing the link policy
//! (and, with bit 1 of the first byte set, with its headers' checksums made right, so that a
//! mutated name or link in a seed archive reaches the unpacker).
//!
//! Each input is unpacked into `dest`, a fresh directory inside a fresh `parent`, next to an
//! `outside` directory holding one file. Invariants, whatever `unpack` returns:
//! - `parent` holds only `dest`, and `outside` holds its one file, unchanged and with no new
//!   hard link (nothing was written outside `dest`);
//! - `dest` holds only directories, regular files and symbolic links, and no file in it has a
//!   hard link outside it;
//! - every symbolic link in `dest` resolves (following links, and lexically past missing parts)
//!   inside `dest` under `LinkPolicy::StayInside` (under `LinkPolicy::AnyTarget`, a slug's,
//!   links may point anywhere: they resolve only inside the container the slug runs in);
//! - at most `LIMIT` bytes of file content are in `dest`, and `Ok(n)` has `n <= LIMIT`;
//! - `unpack` returns in bounded time (libFuzzer's `-timeout`, set by `scripts/fuzz`).
#![no_main]

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wharf_tenant_fs::archive::{unpack, LinkPolicy};

/// The unpacker's limit on content in this target: small, so that every input is quick.
const LIMIT: u64 = 64 * 1024;
/// At most this many entries, and this many bytes of content each, in a generated archive.
const MAX_ENTRIES: usize = 24;
const MAX_DATA: usize = 4096;
/// The decoy file in `outside` and what it holds.
const DECOY: &str = "decoy";
const DECOY_CONTENT: &[u8] = b"written before the unpack";

#[derive(Debug, Arbitrary)]
struct Generated {
    stay_inside: bool,
    compression: Compression,
    entries: Vec<Entry>,
    /// Bytes after the archive's end (or instead of it, when not empty and `end` is false).
    end: bool,
    tail: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, Arbitrary)]
struct Entry {
    path: TarPath,
    kind: Kind,
    names: Names,
    mode: u16,
    data: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
enum Kind {
    Regular,
    Directory,
    Symlink(TarPath),
    HardLink(TarPath),
    Fifo,
    CharDevice,
    BlockDevice,
    /// A GNU sparse file: (offset, length) of up to four data chunks, and its real size.
    Sparse([(u32, u16); 4], u64),
    Other(u8),
}

/// How the entry's name (and link target) is stored.
#[derive(Debug, Arbitrary)]
enum Names {
    /// In the header (cut at 100 bytes).
    Header,
    /// In GNU `././@LongLink` entries before the header.
    GnuLong,
    /// In a PAX extended header before the header.
    Pax,
}

#[derive(Debug, Arbitrary)]
struct TarPath {
    root: Root,
    segments: Vec<Segment>,
    trailing_slash: bool,
}

#[derive(Debug, Arbitrary)]
enum Root {
    Relative,
    Slash,
    /// The absolute path of `parent` (dest's own directory).
    Parent,
    /// The absolute path of `dest`.
    Dest,
    /// The absolute path of `outside` (which holds the decoy).
    Outside,
}

#[derive(Debug, Arbitrary)]
enum Segment {
    A,
    B,
    C,
    Dot,
    DotDot,
    Empty,
    Decoy,
    Bytes(Vec<u8>),
}

/// The directories of one run.
struct Dirs {
    parent: PathBuf,
    dest: PathBuf,
    outside: PathBuf,
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let parent = temporary_dir();
    let outside = temporary_dir();
    let source_dir = temporary_dir();
    let dirs = Dirs {
        dest: parent.path().join("dest"),
        parent: parent.path().to_owned(),
        outside: outside.path().to_owned(),
    };
    std::fs::write(dirs.outside.join(DECOY), DECOY_CONTENT).expect("write decoy");
    let (policy, bytes) = if mode % 2 == 0 {
        let Some((&policy, archive)) = rest.split_first() else {
            return;
        };
        let mut archive = archive.to_vec();
        if mode & 2 != 0 {
            fix_checksums(&mut archive);
        }
        (policy_of(policy % 2 == 0), archive)
    } else {
        let Ok(generated) = Generated::arbitrary_take_rest(Unstructured::new(rest)) else {
            return;
        };
        (policy_of(generated.stay_inside), generated.archive(&dirs))
    };
    let source = source_dir.path().join("archive");
    std::fs::write(&source, &bytes).expect("write archive");
    let result = unpack(&source, &dirs.dest, policy, LIMIT);
    check(&dirs, policy, &result);
});

/// A fresh directory, in memory (`/dev/shm`) where there is one: about eight times as many
/// runs a second as on disk.
fn temporary_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    };
    tempfile::tempdir_in(base).expect("create a temporary directory")
}

fn policy_of(stay_inside: bool) -> LinkPolicy {
    if stay_inside {
        LinkPolicy::StayInside
    } else {
        LinkPolicy::AnyTarget
    }
}

fn check<E: std::fmt::Debug>(dirs: &Dirs, policy: LinkPolicy, result: &Result<u64, E>) {
    let in_parent: Vec<_> = std::fs::read_dir(&dirs.parent)
        .expect("read parent")
        .map(|e| e.expect("parent entry").file_name())
        .collect();
    assert!(
        in_parent.is_empty() || in_parent == ["dest"],
        "written next to dest: {in_parent:?} ({result:?})"
    );
    let in_outside: Vec<_> = std::fs::read_dir(&dirs.outside)
        .expect("read outside")
        .map(|e| e.expect("outside entry").file_name())
        .collect();
    assert_eq!(in_outside, [DECOY], "written outside ({result:?})");
    let decoy = dirs.outside.join(DECOY);
    assert_eq!(std::fs::read(&decoy).expect("read decoy"), DECOY_CONTENT);
    let decoy = std::fs::symlink_metadata(&decoy).expect("decoy metadata");
    assert!(
        decoy.is_file() && decoy.nlink() == 1,
        "decoy linked ({result:?})"
    );
    if let Ok(unpacked) = result {
        assert!(*unpacked <= LIMIT, "unpacked {unpacked} bytes");
    }
    if !dirs.dest.exists() {
        return;
    }
    let dest = dirs.dest.canonicalize().expect("canonical dest");
    let mut files = HashMap::new();
    let mut links = Vec::new();
    walk(&dest, &mut files, &mut links);
    let mut content = 0;
    for (inode, (nlink, seen, size)) in &files {
        assert_eq!(
            nlink, seen,
            "a file in dest (inode {inode}) has links outside it ({result:?})"
        );
        content += size;
    }
    assert!(
        content <= LIMIT,
        "{content} bytes of files in dest, over the limit of {LIMIT} ({result:?})"
    );
    for link in links {
        let target = std::fs::read_link(&link).expect("read link");
        let from = link.parent().expect("a link has a parent").to_owned();
        let mut walk = Resolution { hops: 0 };
        let Some(resolved) = resolve(from, &target, &mut walk) else {
            continue;
        };
        // With `AnyTarget`, a link may lead anywhere: nothing writes through it.
        if policy == LinkPolicy::StayInside {
            assert!(
                resolved.starts_with(&dest),
                "{} -> {} resolves to {}, outside dest ({policy:?}, {result:?})",
                link.display(),
                target.display(),
                resolved.display()
            );
        }
    }
}

/// How a link's resolution went.
struct Resolution {
    /// Links followed so far.
    hops: u32,
}

/// Records regular files by inode as (links, links seen in dest, size) and collects symbolic
/// links, asserting there is nothing else.
fn walk(dir: &Path, files: &mut HashMap<u64, (u64, u64, u64)>, links: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a directory in dest") {
        let path = entry.expect("a directory entry").path();
        let metadata = std::fs::symlink_metadata(&path).expect("metadata in dest");
        let kind = metadata.file_type();
        if kind.is_dir() {
            walk(&path, files, links);
        } else if kind.is_symlink() {
            links.push(path);
        } else {
            assert!(kind.is_file(), "{} is {kind:?}", path.display());
            let file =
                files
                    .entry(metadata.ino())
                    .or_insert((metadata.nlink(), 0, metadata.size()));
            file.1 += 1;
        }
    }
}

/// Where `target`, read from a link in the directory `from`, leads: links followed (at most
/// 40), parts that do not exist taken lexically. `None` for a loop.
fn resolve(from: PathBuf, target: &Path, walk: &mut Resolution) -> Option<PathBuf> {
    let mut current = from;
    for component in target.components() {
        match component {
            Component::RootDir | Component::Prefix(_) => {
                current = PathBuf::from("/");
            }
            Component::CurDir => {}
            Component::ParentDir => {
                current.pop();
            }
            Component::Normal(name) => {
                let next = current.join(name);
                match std::fs::symlink_metadata(&next) {
                    Ok(metadata) if metadata.file_type().is_symlink() => {
                        walk.hops += 1;
                        if walk.hops > 40 {
                            return None;
                        }
                        let link = std::fs::read_link(&next).ok()?;
                        current = resolve(current, &link, walk)?;
                    }
                    _ => current = next,
                }
            }
        }
    }
    Some(current)
}

impl Generated {
    fn archive(&self, dirs: &Dirs) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in self.entries.iter().take(MAX_ENTRIES) {
            entry.append(&mut builder, dirs);
        }
        let mut tar = if self.end {
            builder.into_inner().expect("finish a tar in memory")
        } else {
            // Without the two zero blocks that end an archive.
            builder.get_ref().clone()
        };
        tar.extend_from_slice(&self.tail);
        match self.compression {
            Compression::None => tar,
            Compression::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(&tar).expect("gzip in memory");
                encoder.finish().expect("gzip in memory")
            }
            Compression::Zstd => zstd::encode_all(&tar[..], 1).expect("zstd in memory"),
        }
    }
}

impl Entry {
    fn append(&self, builder: &mut tar::Builder<Vec<u8>>, dirs: &Dirs) {
        let path = self.path.render(dirs);
        let link = match &self.kind {
            Kind::Symlink(target) | Kind::HardLink(target) => Some(target.render(dirs)),
            _ => None,
        };
        let data = &self.data[..self.data.len().min(MAX_DATA)];
        let mut header = tar::Header::new_gnu();
        header.set_mode(u32::from(self.mode));
        header.set_mtime(0);
        let kind = match &self.kind {
            Kind::Regular => tar::EntryType::Regular,
            Kind::Directory => tar::EntryType::Directory,
            Kind::Symlink(_) => tar::EntryType::Symlink,
            Kind::HardLink(_) => tar::EntryType::Link,
            Kind::Fifo => tar::EntryType::Fifo,
            Kind::CharDevice => tar::EntryType::Char,
            Kind::BlockDevice => tar::EntryType::Block,
            Kind::Sparse(..) => tar::EntryType::GNUSparse,
            Kind::Other(byte) => tar::EntryType::new(*byte),
        };
        header.set_entry_type(kind);
        if let Kind::Sparse(chunks, real_size) = &self.kind {
            let gnu = header.as_gnu_mut().expect("a GNU header");
            for (field, (offset, length)) in gnu.sparse.iter_mut().zip(chunks) {
                octal(&mut field.offset, u64::from(*offset));
                octal(&mut field.numbytes, u64::from(*length));
            }
            octal(&mut gnu.realsize, *real_size);
        }
        match self.names {
            Names::Header => {}
            Names::GnuLong => {
                long_name(builder, tar::EntryType::GNULongName, &path);
                if let Some(link) = &link {
                    long_name(builder, tar::EntryType::GNULongLink, link);
                }
            }
            Names::Pax => {
                let mut records = record("path", &path);
                if let Some(link) = &link {
                    records.extend(record("linkpath", link));
                }
                let mut pax = tar::Header::new_ustar();
                pax.set_entry_type(tar::EntryType::XHeader);
                pax.set_size(records.len() as u64);
                pax.set_cksum();
                builder
                    .append(&pax, &records[..])
                    .expect("append to memory");
            }
        }
        set_bytes(&mut header.as_old_mut().name, &path);
        if let Some(link) = &link {
            set_bytes(&mut header.as_old_mut().linkname, link);
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).expect("append to memory");
    }
}

impl TarPath {
    fn render(&self, dirs: &Dirs) -> Vec<u8> {
        let mut out = match self.root {
            Root::Relative => Vec::new(),
            Root::Slash => b"/".to_vec(),
            Root::Parent => absolute(&dirs.parent),
            Root::Dest => absolute(&dirs.dest),
            Root::Outside => absolute(&dirs.outside),
        };
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 || (!out.is_empty() && !out.ends_with(b"/")) {
                out.push(b'/');
            }
            out.extend_from_slice(match segment {
                Segment::A => b"a",
                Segment::B => b"b",
                Segment::C => b"c",
                Segment::Dot => b".",
                Segment::DotDot => b"..",
                Segment::Empty => b"",
                Segment::Decoy => DECOY.as_bytes(),
                Segment::Bytes(bytes) => bytes,
            });
        }
        if self.trailing_slash {
            out.push(b'/');
        }
        out
    }
}

fn absolute(path: &Path) -> Vec<u8> {
    path.to_str()
        .expect("temporary paths are UTF-8")
        .as_bytes()
        .to_vec()
}

/// Makes the checksum of each header of a plain tar right, walking from header to header by
/// their sizes (zero blocks skipped).
fn fix_checksums(tar: &mut [u8]) {
    let mut at = 0;
    while tar.len().saturating_sub(at) >= 512 {
        let block = &mut tar[at..at + 512];
        at += 512;
        if block.iter().all(|&b| b == 0) {
            continue;
        }
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let size = tar::Header::from_byte_slice(block)
            .entry_size()
            .unwrap_or(0);
        let padded = size.div_ceil(512).saturating_mul(512);
        at = at.saturating_add(usize::try_from(padded).unwrap_or(usize::MAX));
    }
}

/// A GNU long name (or link) entry for the header that follows it.
fn long_name(builder: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &[u8]) {
    let mut header = tar::Header::new_gnu();
    set_bytes(&mut header.as_old_mut().name, b"././@LongLink");
    header.set_entry_type(kind);
    let mut data = name.to_vec();
    data.push(0);
    header.set_size(data.len() as u64);
    header.set_cksum();
    builder
        .append(&header, &data[..])
        .expect("append to memory");
}

/// One PAX record: `<length> <key>=<value>\n`, its length counting itself.
fn record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut length = rest + 1;
    while length.to_string().len() + rest != length {
        length += 1;
    }
    let mut out = format!("{length} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// Copies what fits of `value` into a header field (NUL-padded).
fn set_bytes(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field.fill(0);
    field[..n].copy_from_slice(&value[..n]);
}

/// An octal number, NUL-terminated, in a header field (the largest that fits, if too large).
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let max = if digits * 3 >= 64 {
        u64::MAX
    } else {
        (1u64 << (digits * 3)) - 1
    };
    let text = format!("{:0digits$o}", value.min(max));
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}
