"""The headless runner and the command line (`python -m nodes.cli`); imports no ComfyUI code."""
