"""Trainers (single process or torchrun DDP), EMA and checkpoints."""
