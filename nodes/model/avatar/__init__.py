"""LongCat-Video-Avatar model glue."""
