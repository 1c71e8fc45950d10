"""Key layouts of the LongCat files other projects write (WanVideoWrapper / Kijai, FastVideo), their quantized
forms, and the translation of each to the native LongCat module names: checkpoints and LoRAs share one table."""
