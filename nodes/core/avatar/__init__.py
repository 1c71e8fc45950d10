"""LongCat-Video-Avatar core: pure torch / numpy, no ComfyUI imports."""
