"""Pure torch + safetensors core: LoRA files, GPU patcher, the LongCat DiT, schedules. No ComfyUI imports."""
