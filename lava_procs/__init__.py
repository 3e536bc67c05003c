"""lava_procs."""
