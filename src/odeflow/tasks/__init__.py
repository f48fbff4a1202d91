"""One file per task on the training engine: cnf2d, timeseries, ... (see training/task.py)."""
