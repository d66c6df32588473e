"""Command-line interface (``mechscope …``)."""
