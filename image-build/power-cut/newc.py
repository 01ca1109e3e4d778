"""Write a directory tree as a gzip-compressed newc cpio archive (a Linux initramfs).

    python3 newc.py ROOTDIR OUT.cpio.gz

Only what an initramfs needs: directories, regular files, symbolic links; owner root.
"""

import gzip
import os
import stat
import sys


def _header(ino, mode, nlink, size, name):
    fields = (ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name) + 1, 0)
    return b"070701" + b"".join(b"%08X" % value for value in fields) + name + b"\0"


def _pad(length):
    return b"\0" * (-length % 4)


def write_archive(root, out):
    """Archive every entry under ``root`` (paths relative to it) into ``out``."""
    with gzip.open(out, "wb", compresslevel=1) as archive:
        ino = 1
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, root).encode()
                info = os.lstat(path)
                if stat.S_ISLNK(info.st_mode):
                    data = os.readlink(path).encode()
                elif stat.S_ISREG(info.st_mode):
                    with open(path, "rb") as f:
                        data = f.read()
                elif stat.S_ISDIR(info.st_mode):
                    data = b""
                else:
                    continue
                head = _header(ino, info.st_mode, 2 if stat.S_ISDIR(info.st_mode) else 1, len(data), rel)
                archive.write(head + _pad(len(head)) + data + _pad(len(data)))
                ino += 1
        trailer = _header(0, 0, 1, 0, b"TRAILER!!!")
        archive.write(trailer + _pad(len(trailer)))


if __name__ == "__main__":
    write_archive(sys.argv[1], sys.argv[2])
