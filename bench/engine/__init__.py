"""Training of one run: optimizer and schedule, the loop, checkpoints and callbacks."""
