"""Every ``unigen`` command the site's pages show parses with the command line's own parsers, and
the lecture map walks every section of the lecture.

The commands are read from the Markdown sources under ``docs/`` (inline code and ``bash`` blocks);
``unigen train NAME ...`` goes through :func:`unigen.cli.parse_train` (which refuses an option the
recipe does not have), every other command through :func:`unigen.cli.parse_command` (which keeps a
recipe's options after ``algebra show NAME`` for the recipe). Nothing runs.
"""

import re
import shlex
from pathlib import Path

import pytest

from unigen import cli

DOCS = Path(__file__).resolve().parents[1] / "docs"
SECTIONS = ("1.1.1", "1.1.2", "1.1.3", "1.1.4", "1.2", "2.1", "2.2", "2.3", "2.4",
            "3", "3.1", "3.2", "3.3", "3.4", "3.5")
"""The lecture's numbered sections, from 1.1.1 (sigmoid belief nets) to 3.5 (conclusion)."""


def _commands() -> list[tuple[str, str]]:
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        if "_build" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
        inline = re.findall(r"`((?:[A-Z_]+=\S+ )*unigen (?:train|eval|sample|algebra|bench) [^`]*)`", text)
        for line in inline + [line for block in blocks for line in block.splitlines()]:
            words = shlex.split(line)
            while words and "=" in words[0] and not words[0].startswith("-"):  # VAR=value prefixes
                words = words[1:]
            if words[:1] == ["unigen"]:
                found.append((page.relative_to(DOCS).as_posix(), " ".join(words[1:])))
    return found


COMMANDS = _commands()


def test_the_pages_show_commands():
    pages = {page for page, _ in COMMANDS}
    assert {"lecture_map.md", "tutorials/estimator_variance.md", "tutorials/resume_after_a_crash.md"} <= pages
    assert len(COMMANDS) >= 30, COMMANDS


@pytest.mark.parametrize(("page", "command"), COMMANDS, ids=[f"{p}: {c}" for p, c in COMMANDS])
def test_command_parses(page, command):
    words = shlex.split(command)
    try:
        if words[0] == "train":
            options = cli.parse_train(words[1:])
            assert options["algorithm"] == words[1]
        else:
            cli.parse_command(words)
    except SystemExit as error:  # argparse's usage errors
        pytest.fail(f"{page}: `unigen {command}` does not parse (exit {error.code})")


def test_the_lecture_map_walks_every_section():
    headings = re.findall(r"^## (\d+(?:\.\d+)*) ", (DOCS / "lecture_map.md").read_text(encoding="utf-8"), flags=re.M)
    assert tuple(headings) == SECTIONS
    sections = re.split(r"^## ", (DOCS / "lecture_map.md").read_text(encoding="utf-8"), flags=re.M)[1:]
    for section in sections:
        number = section.split()[0]
        for part in ("**Code:**", "**Notebook:**", "**Command:**"):
            assert part in section, f"lecture map §{number} has no {part}"
