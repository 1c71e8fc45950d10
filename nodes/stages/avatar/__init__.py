"""Nodes of LongCat-Video-Avatar."""
