"""One module per console page, each with its ``router``."""
