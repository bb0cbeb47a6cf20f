"""One module per KD loss term; each registers itself in :data:`bench.methods.TERMS`."""
