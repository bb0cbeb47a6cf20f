"""Small helpers shared across the package (atomic I/O, seeding, devices)."""
