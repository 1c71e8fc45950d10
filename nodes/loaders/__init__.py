"""Nodes that load files from ComfyUI's model folders (the DiT, LoRAs, text embeddings) and the LoRA info route."""
