"""Saving and loading netcl models and training checkpoints."""
