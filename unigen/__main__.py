"""The start of the ``unigen`` command: the console script ``unigen`` and ``python -m unigen``.

Its first lines only note SIGINT and SIGTERM, so that a Ctrl-C while the command imports itself
and JAX (about a second) ends in one line and exit status 130 (143 for SIGTERM), never a
traceback; :func:`unigen.cli.run` then takes the signals over with those noted. Before these
lines come only the interpreter's start-up and ``import unigen`` (which imports no module of the
standard library but ``signal``, so a few milliseconds). Imported by a program, this module
would change its signal handling: only the command imports it.
"""

import signal

_NOTED: list[int] = []
"""The signals received before :func:`unigen.cli.run` took them over."""


def _note(number, frame):
    _NOTED.append(number)


signal.signal(signal.SIGINT, _note)
signal.signal(signal.SIGTERM, _note)


def run() -> None:
    """The console entry point: :func:`unigen.cli.run`, after its import, with the signals noted."""
    from unigen.cli import run as run_command  # the slow part of the start, signals only noted

    run_command(_NOTED)


if __name__ == "__main__":
    run()
