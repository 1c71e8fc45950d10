"""Paths named by a user or by a file are used only when, after symlinks, they lie inside the folders they are meant
to come from: no name, link or index can lead the pack to a file elsewhere on the disk."""
import os


def resolve_inside(path, folders):
    """The real path of `path` when it lies inside one of `folders` (also resolved), else None."""
    try:
        real = os.path.realpath(path)
        roots = [os.path.realpath(folder) for folder in folders]
    except (OSError, ValueError):  # a NUL byte in the name, a symlink loop on some platforms
        return None
    for root in roots:
        try:
            if os.path.commonpath([real, root]) == root:
                return real
        except ValueError:  # another drive (Windows)
            continue
    return None
