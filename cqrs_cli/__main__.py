"""`python -m cqrs_cli`: the same as the `cqrs` command."""

from .cli.main import main

main()
