"""What this package's fixtures are built from, importable by its test modules (a module
named ``conftest`` is one of several in the test tree, so importing from it depends on
which one Python loaded first)."""

HOOK = "blocks.1.mlp.hook_post"
INDICATOR_WORDS = ("mary", "dog", "paris", "seven")
