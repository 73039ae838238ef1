"""The exit codes are written once, in C (lib/core/error.c, lp_exit_codes),
and printed by `logpipe --help` and, for the codes each command can return,
by every command's --help. Two copies must stay word for word with it:
the Airflow operators' EXIT_MEANING (they turn a code into a task's failure
message where no binary need be importable) and README's list. No server is
needed: the help text, the operators' source (read with ast, so Airflow need
not be importable here) and README are compared."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def codes_in(text: str) -> dict[int, str]:
    """'0 ok, 1 input/output error, ... 5 partial run: ... again.' -> {code: meaning}."""
    flat = " ".join(text.split()).rstrip(".")
    found = {}
    for m in re.finditer(r"(?:^|, )(\d) (.+?)(?=, \d |$)", flat):
        found[int(m.group(1))] = m.group(2)
    return found


def c_table(logpipe_bin: str) -> dict[int, str]:
    out = subprocess.run([logpipe_bin, "--help"], capture_output=True, text=True, check=True).stdout
    return codes_in(out.split("Exit codes:", 1)[1])


def operators_table() -> dict[int, str]:
    tree = ast.parse((ROOT / "airflow/plugins/logpipe_airflow/operators.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "EXIT_MEANING" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("operators.py has no EXIT_MEANING")


def test_help_prints_every_code_of_the_table(logpipe_bin):
    assert sorted(c_table(logpipe_bin)) == [0, 1, 2, 3, 4, 5]


# The codes each command can return (its lp_exit_codes_print call's list).
COMMAND_CODES = {"generate": [0, 1, 2], "parse": [0, 1, 2], "produce": [0, 1, 2, 3, 5], "setup": [0, 2, 4],
                 "consume": [0, 2, 3, 4, 5], "check": [0, 2, 3, 4], "replay": [0, 2, 3, 5]}


@pytest.mark.parametrize("command", sorted(COMMAND_CODES))
def test_each_commands_help_prints_its_codes_from_the_table(logpipe_bin, command):
    c = c_table(logpipe_bin)
    out = subprocess.run([logpipe_bin, command, "--help"], capture_output=True, text=True, check=True).stdout
    assert out.count("Exit status:") == 1, out
    listed = codes_in(out.split("Exit status:", 1)[1])
    assert sorted(listed) == COMMAND_CODES[command]
    assert listed == {code: c[code] for code in listed}


def test_the_operators_copy_says_what_the_c_table_says(logpipe_bin):
    c = c_table(logpipe_bin)
    ops = operators_table()
    assert sorted(ops) == [code for code in sorted(c) if code]
    for code, text in ops.items():
        # "a"/"an", the table's meaning, then the operator's own remark in parentheses
        m = re.fullmatch(r"an? (.+?)( \(.+\))?", text)
        assert m and m.group(1) == c[code], f"EXIT_MEANING[{code}] = {text!r}, the C table says {c[code]!r}"


def test_readme_lists_the_c_table(logpipe_bin):
    readme = " ".join((ROOT / "README.md").read_text().split())
    m = re.search(r"\*\*Exit codes\*\*[^:]*\): (0 ok, .+? again\.)", readme)
    assert m, "README has no **Exit codes** list"
    assert codes_in(m.group(1)) == c_table(logpipe_bin)
