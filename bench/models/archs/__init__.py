"""One module per architecture family; each registers builders in :data:`bench.models.MODELS`."""
