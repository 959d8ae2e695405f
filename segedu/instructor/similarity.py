"""Flag answers that look like the course's public reference code pasted in.

The references in ``segedu/`` are public, and in a grading kernel they cannot be imported, but
their source can still be copied into an answer. Such an answer is correct, so no test catches it;
a person has to look. We compare the *shape* of each function a student wrote with the reference's:
the token sequence with every name, number and string replaced by a placeholder (so renaming
variables changes nothing), scored with :class:`difflib.SequenceMatcher`. Short functions are
skipped, since a one-line answer can only look like the reference.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import io
import keyword
import textwrap
import tokenize
from functools import lru_cache

THRESHOLD = 0.9
MIN_TOKENS = 60
MAX_TOKENS = 4000        # longer functions are not compared (nor is a reference that long)
MAX_CELL_CHARS = 50_000  # a cell longer than this is not parsed: the check must stay cheap
MAX_FUNCTIONS = 40       # per submission


def shape(source: str) -> tuple[str, ...]:
    """The token sequence of ``source`` with names, numbers and strings made anonymous."""
    tokens = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NAME:
                tokens.append(token.string if keyword.iskeyword(token.string) else "N")
            elif token.type == tokenize.NUMBER:
                tokens.append("0")
            elif token.type == tokenize.STRING:
                tokens.append("S")
            elif token.type == tokenize.OP:
                tokens.append(token.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return tuple(tokens)


def _body_without_docstring(node: ast.FunctionDef) -> list:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return body


def _function_shapes(source: str) -> dict[str, tuple]:
    if len(source) > MAX_CELL_CHARS:
        return {}
    try:
        tree = ast.parse(textwrap.dedent(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    shapes = {}
    for node in tree.body:   # top-level functions: the answers (nested ones are part of their body)
        if isinstance(node, ast.FunctionDef):
            body = _body_without_docstring(node)
            if body:
                shapes[node.name] = shape("\n".join(ast.unparse(statement) for statement in body))
    return shapes


@lru_cache(maxsize=None)
def reference_shapes(assignment: str) -> dict[str, tuple]:
    """``{"segedu.module.function": shape}`` of the references an exercise grades against.

    An adapter in the registry (``delegates_to`` set) is grading glue that no student sees; what a
    student could paste is the library function it wraps, so that is the one compared.
    """
    import importlib

    from segedu.grading.exercises import EXERCISES

    found = {}
    for graded in EXERCISES[assignment].functions.values():
        module_name, _, attribute = (graded.delegates_to or graded.reference).partition(":")
        function = getattr(importlib.import_module(module_name), attribute)
        try:
            source = inspect.getsource(function)
        except (OSError, TypeError):
            continue
        for name, tokens in _function_shapes(source).items():
            found[f"{function.__module__}.{name}"] = tokens
    return found


def close_to_reference(notebook, assignment: str, threshold: float = THRESHOLD) -> list[str]:
    """Names of the references that a function in the student's answer cells closely resembles."""
    references = reference_shapes(assignment)
    hits, compared = [], 0
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if cell.cell_type != "code" or not (isinstance(meta, dict) and meta.get("solution")):
            continue
        for tokens in _function_shapes(cell.source).values():
            if not MIN_TOKENS <= len(tokens) <= MAX_TOKENS or compared >= MAX_FUNCTIONS:
                continue
            compared += 1
            for name, reference in references.items():
                if len(reference) < MIN_TOKENS or name in hits:
                    continue
                if difflib.SequenceMatcher(None, tokens, reference, autojunk=False).ratio() >= threshold:
                    hits.append(name)
    return hits
