"""ComfyUI glue of the LongCat-Video pack; the pure-torch core lives in `nodes.core`."""
