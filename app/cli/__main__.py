"""`python -m app.cli`: the `opsgraph` command."""

from app.cli import main

main()
