"""The app's routes, by page: runs (list, run, circuit, files), explore (compare, attention,
features) and the playground."""
