"""LongCat-Video-Avatar nodes."""
