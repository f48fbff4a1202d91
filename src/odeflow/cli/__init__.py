"""The `odeflow` command line."""
