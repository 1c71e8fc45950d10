"""Model names (from the UI, the API or a saved workflow) resolved only inside ComfyUI's model folders: after
symlinks, a file or folder must lie in one of the roots of its folder type. Models kept elsewhere are used by adding
their folder to extra_model_paths.yaml, not by linking them in."""
import os

import folder_paths

from ..core.confined_paths import resolve_inside


class ModelNameError(ValueError):
    """A name that does not denote a file inside the model folders (traversal, absolute, outside link, unknown)."""


def confined(folder, name, path):
    """The real path of `path` (what `name` denotes) when it lies inside one of `folder`'s roots."""
    real = resolve_inside(path, folder_paths.get_folder_paths(folder))
    if real is None:
        kind = "folder" if os.path.isdir(path) else "file"
        raise ModelNameError(f"'{name}': links to a {kind} outside the {folder} folders (to use it, add the folder "
                             "it lives in to extra_model_paths.yaml)")
    return real


def resolve_model_file(folder, name, what):
    """The real path of `name`, a relative path of a file in one of `folder`'s roots; ModelNameError otherwise."""
    if not name or not isinstance(name, str):
        raise ModelNameError(f"no {what} name given")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
        raise ModelNameError(f"'{name}': only names inside the {folder} folders are allowed")
    path = folder_paths.get_full_path(folder, name) if name in folder_paths.get_filename_list(folder) else None
    if path is None:
        raise ModelNameError(f"'{name}': no such file in the {folder} folders")
    return confined(folder, name, path)


def loop_free_names(folder):
    """ComfyUI's listing of a model folder type (cached by ComfyUI per folder mtime), less the names that reach a
    file through a directory link loop (`ln -s . loop1` lists every file again under loop1/, loop1/loop1/, ...
    down to the system's link limit): a name is dropped when one of its folders resolves to the root or to a
    folder above it. Links to other folders are kept."""
    roots = folder_paths.get_folder_paths(folder)
    real = {}

    def resolved(path):
        if path not in real:
            real[path] = os.path.realpath(path)
        return real[path]

    kept = []
    for name in folder_paths.get_filename_list(folder):
        parts = name.replace(os.sep, "/").split("/")[:-1]
        root = next((r for r in roots if os.path.exists(os.path.join(r, name))), None)
        if root is None or not parts:
            kept.append(name)
            continue
        seen, path = {resolved(root)}, root
        for part in parts:
            path = os.path.join(path, part)
            if resolved(path) in seen:
                break
            seen.add(resolved(path))
        else:
            kept.append(name)
    return kept
