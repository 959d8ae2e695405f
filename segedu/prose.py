"""Sentences that a notebook writes from the numbers it computed, and whose claims it checks.

A lecture that types "FCN-8s scores 0.71, more than FCN-32s" by hand is right only until the
computation changes. :func:`say` writes the sentence from the computed values instead, and checks
the claim the sentence makes (an ordering, a range, a comparison): if the numbers stop supporting
the words, the cell fails with an ``AssertionError`` that names the claim and the values.

>>> from segedu.prose import say
>>> say("FCN-8s reaches a mean IoU of {fine:.3f}, more than FCN-32s ({coarse:.3f}).",
...     "fine > coarse", fine=0.712, coarse=0.523)
FCN-8s reaches a mean IoU of 0.712, more than FCN-32s (0.523).
>>> say("The gain is {gain:.2f}.", "0 < gain < 0.1", gain=0.19)
Traceback (most recent call last):
    ...
AssertionError: the text claims `0 < gain < 0.1`, which is false for gain=0.19. ...

The template is a :meth:`str.format` template (so ``{x:.3f}`` formats a value, and a literal brace,
e.g. in LaTeX, is written twice: ``$\\sqrt{{2}}$``). Each claim is a Python expression over the
values, such as ``"a < b < c"``, ``"0.6 < share < 0.7"`` or ``"abs(x - y) < 0.01"``; it may use
``abs``, ``min``, ``max``, ``len``, ``round``, ``sorted``, ``all``, ``any`` and ``sum``. In Jupyter
(IPython 7.34 or later, as in Colab) the sentence is shown as Markdown; elsewhere it is printed.
The module needs neither torch nor IPython.
"""

from __future__ import annotations

import ast
import numbers

__all__ = ["say", "sentence", "check_claims"]

_BUILTINS = {f.__name__: f for f in (abs, min, max, len, round, sorted, all, any, sum)}


def _shown(value) -> str:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.6g}"   # numpy's float32 and float64 print as plain numbers
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_claims(claims, values: dict, text: str = "") -> None:
    """Assert every claim (a Python expression over ``values``) that a text makes, e.g. a figure's caption.

    ``text``, if given, is the sentence the claims belong to, and the error message quotes it.

    >>> check_claims(["a < b < c"], dict(a=1, b=2, c=3))
    >>> check_claims(["a < b"], dict(a=2, b=1))
    Traceback (most recent call last):
        ...
    AssertionError: the text claims `a < b`, which is false for a=2, b=1. ...
    """
    if isinstance(claims, str):
        claims = [claims]
    for claim in claims:
        if not isinstance(claim, str):
            raise TypeError(f"a claim is a Python expression in a string, such as \"a < b\", not {claim!r}")
        try:
            tree = ast.parse(claim, mode="eval")
            code = compile(tree, "<claim>", "eval")
        except SyntaxError as error:
            raise ValueError(f"the claim `{claim}` is not a Python expression ({error.msg}); "
                             "write it as, e.g., \"a < b < c\" or \"0.6 < share < 0.7\"") from None
        bound = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
        names = list(dict.fromkeys(node.id for node in ast.walk(tree)
                                   if isinstance(node, ast.Name) and node.id not in bound))  # not `x` of `for x in`
        unknown = [name for name in names if name not in values and name not in _BUILTINS]
        if unknown:
            raise ValueError(f"the claim `{claim}` uses {', '.join(unknown)}, which is not among the values "
                             f"given to the sentence ({', '.join(sorted(values)) or 'none'}): pass it as a "
                             "keyword argument")
        # the author's own claim, not user input; the values are globals, so that generator expressions see them
        try:
            result = eval(code, {**values, "__builtins__": _BUILTINS})
        except Exception as error:  # noqa: BLE001 - reported with the claim that raised it
            raise ValueError(f"the claim `{claim}` could not be evaluated: {type(error).__name__}: {error}") from error
        try:
            holds = bool(result)
        except ValueError:  # e.g. a numpy array of several booleans
            raise ValueError(f"the claim `{claim}` gives {type(result).__name__} {result!r}, not one truth value: "
                             "wrap it in all(...) or any(...)") from None
        if not holds:
            used = ", ".join(f"{name}={_shown(values[name])}" for name in names if name in values)
            where = f"\nsentence: {text}" if text else ""
            raise AssertionError(f"the text claims `{claim}`, which is false for {used}. The text no longer matches "
                                 f"the computation: rewrite it, or find out what changed the numbers.{where}")


def sentence(template: str, *claims: str, **values) -> str:
    """The sentence ``template.format(**values)``, after checking that every claim holds.

    >>> sentence("{n} superpixels for a target of {target}", "n < target", n=56, target=100)
    '56 superpixels for a target of 100'
    """
    try:
        text = template.format(**values)
    except KeyError as error:
        raise ValueError(f"the sentence {template!r} names {{{error.args[0]}}}, but no value of that name was "
                         f"given ({', '.join(sorted(values)) or 'none'}): pass it as a keyword argument") from None
    except (IndexError, ValueError) as error:
        raise ValueError(f"the sentence {template!r} is not a valid format template ({error}); a literal brace, "
                         "e.g. in LaTeX, is written twice: {{ and }}") from None
    check_claims(claims, values, text)
    return text


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def say(template: str, *claims: str, **values) -> None:
    """Show ``template.format(**values)`` as a Markdown sentence, after checking that every claim holds.

    In a Jupyter kernel the sentence is displayed as Markdown (with a plain-text copy for consoles);
    without IPython it is printed. A claim that does not hold raises an ``AssertionError`` that names
    the claim and the values it used. Returns nothing, so that a cell ending in ``say(...)`` shows the
    sentence once.
    """
    text = sentence(template, *claims, **values)
    if _in_ipython():
        from IPython.display import display

        display({"text/markdown": text, "text/plain": text}, raw=True)
    else:
        print(text)
