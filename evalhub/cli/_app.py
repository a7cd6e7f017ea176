"""The typer application every command module registers itself on."""

import typer

app = typer.Typer(
    name="evalhub",
    help="Is the fine-tuned model better than its base, and what did it forget?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are plain text: with Rich markup on, "[gate]" in "a [gate] table" vanished as an unknown tag.
    rich_markup_mode=None,
)
