"""The limits the code keeps to (README "Layout"): no source file of gt or lpm over 450 lines, no
function over 60 lines unless a comment on the line before its ``def`` says why."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = sorted(p for package in ("gt", "lpm") for p in (ROOT / package).rglob("*.py"))
MAX_FILE_LINES, MAX_FUNCTION_LINES = 450, 60

pytestmark = pytest.mark.first_pass   # reads the source files: the same in every pass


def test_the_sources_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in SOURCES}
    assert {"gt/autograd/backward.py", "gt/tensor/core.py", "lpm/train.py"} <= names


def test_no_file_over_450_lines():
    long = {p.relative_to(ROOT).as_posix(): n for p in SOURCES
            if (n := p.read_text().count("\n")) > MAX_FILE_LINES}
    assert long == {}


def test_no_function_over_60_lines_without_a_reason():
    long = []
    for path in SOURCES:
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                size = node.end_lineno - node.lineno + 1
                explained = start >= 2 and lines[start - 2].lstrip().startswith("#")
                if size > MAX_FUNCTION_LINES and not explained:
                    long.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno} {node.name} ({size} lines)")
    assert long == []
