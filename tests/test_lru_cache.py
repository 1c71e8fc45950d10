"""The cache behind prepared LoRA stacks and read LoRA files keeps the most recently used values only."""
from longcat_pack.nodes.core.lru_cache import LruCache


def test_keeps_the_most_recently_used_and_rebuilds_the_rest():
    built = []
    cache = LruCache(2)

    def get(key):
        return cache.get_or_build(key, lambda: built.append(key) or key.upper())

    assert [get("a"), get("b"), get("a"), get("c")] == ["A", "B", "A", "C"]  # "b" is now the least recent
    assert list(cache) == ["a", "c"]
    assert get("a") == "A" and get("b") == "B"
    assert built == ["a", "b", "c", "b"]


def test_a_new_version_replaces_its_entry():
    """Keyed by file, versioned by mtime and size: touching a file again and again keeps one entry, rebuilt."""
    built = []
    cache = LruCache(4)
    for version in range(10):
        assert cache.get_or_build("lora.safetensors", lambda: built.append(version) or f"v{version}",
                                  version=version) == f"v{version}"
        assert cache.get_or_build("lora.safetensors", lambda: built.append("again"), version=version) == f"v{version}"
    assert list(cache) == ["lora.safetensors"] and built == list(range(10))
    cache.get_or_build("other", lambda: "o", version=1)
    cache.get_or_build("lora.safetensors", lambda: "v10", version=10)  # a replaced entry is the most recent
    assert list(cache) == ["other", "lora.safetensors"]


def test_the_stale_value_is_released_before_the_new_one_is_built():
    """A replaced value (gigabytes of LoRA factors) is not held while its successor is read."""
    cache = LruCache(2)
    cache.get_or_build("big", lambda: "old", version=1)
    seen = []
    cache.get_or_build("big", lambda: seen.append(dict(cache)) or "new", version=2)
    assert seen == [{}]
