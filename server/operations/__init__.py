"""Operations, checkpoints, groups and routes."""
