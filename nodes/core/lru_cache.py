"""A small least-recently-used cache for values that are expensive to build and too large to keep many of."""
from collections import OrderedDict


class LruCache(OrderedDict):
    """Holds the `size` most recently used values; `get_or_build` builds what is missing."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def get_or_build(self, key, build):
        if key in self:
            self.move_to_end(key)
        else:
            self[key] = build()
            while len(self) > self.size:
                self.popitem(last=False)
        return self[key]
