"""Training infrastructure: run folders, metrics, checkpoints, progress, trainers."""
