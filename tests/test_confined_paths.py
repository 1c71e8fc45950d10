"""The one confinement rule: a path is used only when, after symlinks, it lies inside one of its allowed folders."""
from longcat_pack.nodes.core.confined_paths import resolve_inside


def test_inside_outside_and_links(tmp_path):
    root, other = tmp_path / "root", tmp_path / "other"
    (root / "sub").mkdir(parents=True)
    other.mkdir()
    (root / "sub" / "a.safetensors").write_bytes(b"x")
    (other / "b.safetensors").write_bytes(b"x")
    (root / "in_link.safetensors").symlink_to(root / "sub" / "a.safetensors")
    (root / "out_link.safetensors").symlink_to(other / "b.safetensors")
    (root / "out_dir").symlink_to(other, target_is_directory=True)
    assert resolve_inside(root / "sub" / "a.safetensors", [root]) == str(root / "sub" / "a.safetensors")
    assert resolve_inside(root / "in_link.safetensors", [root]) == str(root / "sub" / "a.safetensors")
    assert resolve_inside(root / "out_link.safetensors", [root]) is None
    assert resolve_inside(root / "out_dir" / "b.safetensors", [root]) is None
    assert resolve_inside(root / "out_link.safetensors", [root, other]) == str(other / "b.safetensors")
    assert resolve_inside(root / ".." / "other" / "b.safetensors", [root]) is None
    assert resolve_inside(tmp_path / "root2" / "x", [root]) is None  # a sibling sharing the prefix "root"
    assert resolve_inside(str(root / "a\0b"), [root]) is None


def test_a_linked_root_is_resolved_too(tmp_path):
    """A models folder that is itself a link (to a bigger disk) keeps working."""
    disk = tmp_path / "disk"
    disk.mkdir()
    (disk / "m.safetensors").write_bytes(b"x")
    (tmp_path / "models").symlink_to(disk, target_is_directory=True)
    assert resolve_inside(tmp_path / "models" / "m.safetensors", [tmp_path / "models"]) == str(disk / "m.safetensors")
