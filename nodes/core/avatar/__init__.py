"""LongCat-Video-Avatar (audio-driven talking video) in plain torch: the audio tokens, the reference-latent
attention layout, the speaker routing and the avatar DiT built on the base DiT's blocks."""
