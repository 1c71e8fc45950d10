"""LongCat-Video-Avatar (audio-driven talking video) in plain torch: the audio tokens, the reference-latent
attention layout, the speaker routing the avatar DiT built on the base DiT's blocks, and
the audio features (whisper / wav2vec2 recipes, loudness). No ComfyUI imports."""
