"""`python -m posgw ...` runs the `posgw` command line."""

from posgw.cli.main import main

main(prog_name="posgw")
