"""What the pages show, computed from the store (or, for live pages, the model): plain
functions returning JSON-able dicts, one module per page."""
