"""The one error type for user mistakes. Its message names the fix; the CLI prints it on one line, exit 2."""


class UserError(Exception):
    """Bad input or usage: the message says what to do instead."""


class Interrupted(Exception):
    """The user stopped a run (Ctrl+C); the message says what was kept and how to resume."""


def first_repeat(values):
    """The first value given a second time, or None: for refusing an input named twice."""
    seen = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None
