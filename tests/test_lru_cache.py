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
