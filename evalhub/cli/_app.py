"""The typer application every command module registers itself on."""

import typer

app = typer.Typer(
    name="evalhub",
    help="Is the fine-tuned model better than its base, and what did it forget?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
