"""Small file-system helpers shared by the parts that write keys and settings."""

import os


def fsync_dir(directory):
    """Flush a directory entry (after a rename or create) so it survives a power cut; best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
