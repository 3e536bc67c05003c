"""natgrad."""
