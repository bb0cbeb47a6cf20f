"""One module per dataset; each registers itself in :data:`bench.data.DATASETS`."""
