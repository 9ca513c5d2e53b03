"""How the training package's commands end on an expected error: one line, exit status 1."""

import sys
from typing import Callable, Tuple, Type


def run_command(prog: str, action: Callable[[], int],
                errors: Tuple[Type[Exception], ...]) -> int:
    """Return `action()`; an expected error prints `prog: error: message` and gives 1."""
    try:
        return action()
    except errors as error:
        print(f'{prog}: error: {error}', file=sys.stderr)
        return 1
