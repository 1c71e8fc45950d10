"""ComfyUI glue of LongCat-Video-Avatar."""
