"""The `nmt` command line: one module per verb, composed in cli/main.py."""
