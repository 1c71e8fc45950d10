"""LongCat-Video as a ComfyUI model family: the BaseModel and config, and the ModelPatcher that carries LoRA stacks."""
