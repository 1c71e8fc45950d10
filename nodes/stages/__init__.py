"""Nodes of the sampling stages: schedules, guidance, block-sparse attention, the refinement geometry."""
