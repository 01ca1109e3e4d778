"""Read and change an ext4 file-system image with debugfs: no mounting, no root needed.

Writing in place (instead of rebuilding the file system with ``mke2fs -d``) keeps everything
of the base image we do not touch exactly as it was, extended attributes and file
capabilities included.
"""

import logging
import os
import re
import stat
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_STAT_RE = re.compile(r"Type:\s+(\S+)\s+Mode:\s+(\d+).*?User:\s+(\d+)\s+Group:\s+(\d+)", re.S)
# debugfs reports these on stderr for things we expect (a first try that finds nothing).
_HARMLESS = ("debugfs 1.",)


class Ext4Error(RuntimeError):
    """debugfs could not read or change the image."""


def _quote(path):
    path = str(path)
    if any(c in path for c in '"\n\\'):
        raise Ext4Error(f"path not supported by debugfs scripts: {path!r}")
    return f'"{path}"'


def run_debugfs(image, commands, *, write=False):
    """Run debugfs commands on ``image``; return (stdout, stderr lines that are not banners)."""
    with tempfile.NamedTemporaryFile("w", suffix=".debugfs", delete=False) as f:
        f.write("\n".join(commands) + "\n")
        script = f.name
    try:
        args = ["debugfs"] + (["-w"] if write else []) + ["-f", script, str(image)]
        result = subprocess.run(args, capture_output=True, text=True, errors="replace")
    finally:
        os.unlink(script)
    if result.returncode != 0:
        raise Ext4Error(f"debugfs failed on {image}: {result.stderr.strip()}")
    errors = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(_HARMLESS)]
    return result.stdout, errors


def stat_path(image, path):
    """(type, mode, uid, gid) of ``path`` in the image, or None if it does not exist."""
    result = subprocess.run(["debugfs", "-R", f"stat {_quote(path)}", str(image)],
                            capture_output=True, text=True, errors="replace")
    m = _STAT_RE.search(result.stdout)
    if not m:
        return None
    kind, mode, uid, gid = m.groups()
    return kind, int(mode, 8), int(uid), int(gid)


def read_file(image, path):
    """Bytes of a regular file in the image, or None if it is missing."""
    if stat_path(image, path) is None:
        return None
    result = subprocess.run(["debugfs", "-R", f"cat {_quote(path)}", str(image)], capture_output=True)
    return result.stdout


def read_link(image, path):
    """Target of a symlink in the image, or None."""
    result = subprocess.run(["debugfs", "-R", f"stat {_quote(path)}", str(image)],
                            capture_output=True, text=True, errors="replace")
    m = re.search(r'Fast link dest: "(.*)"', result.stdout)
    if m:
        return m.group(1)
    if "Type: symlink" in result.stdout:  # slow symlink: the target is the file's data
        return subprocess.run(["debugfs", "-R", f"cat {_quote(path)}", str(image)],
                              capture_output=True, text=True).stdout
    return None


def dump_tree(image, path, dest):
    """Copy a directory of the image to ``dest`` on the host (debugfs rdump)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _, errors = run_debugfs(image, [f"rdump {_quote(path)} {_quote(dest)}"])
    if errors:
        raise Ext4Error(f"rdump {path}: {'; '.join(errors[:5])}")
    return dest / Path(path).name


def apply_tree(image, stage, *, replace_keep_owner=(), owners=None):
    """Copy every file, directory and symlink under ``stage`` into the image at the same path.

    New entries are owned by root (or as ``owners[path] = (uid, gid)`` says) with the stage
    file's permission bits. Existing directories are kept as they are. Existing files are
    replaced; those in ``replace_keep_owner`` (e.g. /etc/shadow) keep their old mode and owner.
    Returns the number of debugfs commands run.
    """
    stage = Path(stage)
    owners = owners or {}
    keep = set(replace_keep_owner)
    commands = []
    # Walk top-down; only entries whose parent existed in the base can already exist.
    new_dirs = set()
    for dirpath, dirnames, filenames in os.walk(stage):
        dirnames.sort()
        rel_dir = "/" + str(Path(dirpath).relative_to(stage)).lstrip(".")
        rel_dir = rel_dir.rstrip("/") or "/"
        parent_is_new = rel_dir in new_dirs
        entries = sorted(dirnames + filenames)
        for name in entries:
            host = Path(dirpath) / name
            target = (rel_dir.rstrip("/") + "/" + name)
            existing = None if parent_is_new else stat_path(image, target)
            st = host.lstat()
            uid, gid = owners.get(target, (0, 0))
            if stat.S_ISDIR(st.st_mode) and not host.is_symlink():
                if existing is None:
                    new_dirs.add(target)
                    commands += [f"mkdir {_quote(target)}",
                                 f"sif {_quote(target)} mode 0{stat.S_IFDIR | stat.S_IMODE(st.st_mode):o}",
                                 f"sif {_quote(target)} uid {uid}", f"sif {_quote(target)} gid {gid}"]
                elif existing[0] != "directory":
                    raise Ext4Error(f"{target}: is a {existing[0]} in the base image, expected a directory")
                continue
            mode = stat.S_IMODE(st.st_mode)
            if existing is not None:
                if existing[0] == "directory":
                    raise Ext4Error(f"{target}: is a directory in the base image, cannot replace it")
                commands.append(f"rm {_quote(target)}")
                if target in keep:
                    mode, uid, gid = stat.S_IMODE(existing[1]), existing[2], existing[3]
            if host.is_symlink():
                commands += [f"symlink {_quote(target)} {_quote(os.readlink(host))}",
                             f"sif {_quote(target)} uid {uid}", f"sif {_quote(target)} gid {gid}"]
                continue
            commands += [f"write {_quote(host)} {_quote(target)}",
                         f"sif {_quote(target)} mode 0{stat.S_IFREG | mode:o}",
                         f"sif {_quote(target)} uid {uid}", f"sif {_quote(target)} gid {gid}"]
    _, errors = run_debugfs(image, commands, write=True)
    if errors:
        raise Ext4Error(f"writing {image}: {'; '.join(errors[:5])}")
    return len(commands)


def fsck(image):
    """Check the file system read-only (e2fsck -fn); raise with its report when it is not clean."""
    result = subprocess.run(["e2fsck", "-fn", str(image)], capture_output=True, text=True)
    if result.returncode != 0:
        raise Ext4Error(f"e2fsck -fn {image} (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


def label(image):
    """The volume label of the ext4 image."""
    result = subprocess.run(["dumpe2fs", "-h", str(image)], capture_output=True, text=True)
    m = re.search(r"Filesystem volume name:\s*(\S*)", result.stdout)
    return m.group(1) if m else None
