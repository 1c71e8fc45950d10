"""A small least-recently-used cache for values that are expensive to build and too large to keep many of."""
import threading
from collections import OrderedDict


class LruCache(OrderedDict):
    """Holds the `size` most recently used values; `get_or_build` builds what is missing or out of date. Safe to
    share between threads: the bookkeeping is locked, a build is not (two threads may build one value at once)."""

    def __init__(self, size):
        super().__init__()
        self.size = size
        self._lock = threading.Lock()

    def get_or_build(self, key, build, version=None):
        """The value for `key`, built when missing or when it was built for another `version` (a file's mtime and
        size): a changed file replaces its entry, and the stale value is dropped before the new one is built."""
        with self._lock:
            entry = self.get(key)
            if entry is not None and entry[0] == version:
                self.move_to_end(key)
                return entry[1]
            self.pop(key, None)
        value = build()
        with self._lock:
            self[key] = (version, value)
            while len(self) > self.size:
                self.popitem(last=False)
        return value
