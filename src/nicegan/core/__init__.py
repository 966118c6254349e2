"""Shared helpers, the bottom layers: errors, the version, files, progress, bounds on nested data, processes and
threads, devices and seeding, images and tiles. Nothing here imports the rest of the package."""
