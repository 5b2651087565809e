"""One module per command; each exposes ``main(argv) -> int``."""
