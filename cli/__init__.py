"""The `posgw` command line: one module per command group, above every other part."""
