"""One module per tracking backend, discovered by :data:`bench.tracking.LOGGERS`."""
