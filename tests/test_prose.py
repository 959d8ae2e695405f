"""segedu.prose: sentences written from computed values, with their claims checked.

The display path is checked against real IPython (an InteractiveShell capturing its display
messages, and a real Jupyter kernel), not against a stand-in."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from segedu.prose import check_claims, say, sentence


def test_values_are_formatted_into_the_sentence(capsys):
    say("FCN-8s: {miou:.3f} ({n} images, {share:.0%} background)", "miou > 0.5",
        miou=np.float32(0.71249), n=np.int64(200), share=0.734)
    assert capsys.readouterr().out == "FCN-8s: 0.712 (200 images, 73% background)\n"


def test_a_literal_brace_is_written_twice():
    assert sentence(r"a step gives $\sqrt{{2}}$ = {g:.3f}", g=2 ** 0.5) == r"a step gives $\sqrt{2}$ = 1.414"


@pytest.mark.parametrize("claim", ["a < b < c", "0.5 < b < 0.6", "abs(c - 0.7) < 0.01", "max(a, b) < c",
                                   "sorted([c, a, b]) == [a, b, c]", "all(x > 0)",
                                   "all(v > a for v in (b, c))", "[v for v in x if v > 1.5] == [2]"])
def test_claims_that_hold_pass(claim):
    check_claims([claim], dict(a=0.3, b=0.55, c=0.7, x=np.array([1, 2])))


def test_a_false_claim_names_the_claim_the_values_and_the_sentence():
    with pytest.raises(AssertionError) as error:
        say("FCN-32s < FCN-16s < FCN-8s: {a:.3f}, {b:.3f}, {c:.3f}", "a < b < c",
            a=np.float64(0.52), b=np.float32(0.61), c=0.60, unused=7)
    message = str(error.value)
    assert "the text claims `a < b < c`" in message
    assert "a=0.52, b=0.61, c=0.6." in message        # numpy scalars as plain numbers, in the claim's order
    assert "unused" not in message                    # only the values the claim uses
    assert "sentence: FCN-32s < FCN-16s < FCN-8s: 0.520, 0.610, 0.600" in message


def test_every_claim_is_checked_not_only_the_first():
    with pytest.raises(AssertionError, match="`n < 60`"):
        sentence("{n}", "n > 50", "n < 60", n=70)


def test_nothing_is_shown_when_a_claim_fails(capsys):
    with pytest.raises(AssertionError):
        say("{n}", "n > 50", n=3)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("call, fix", [
    (lambda: sentence("{missing}", n=1), "names {missing}, but no value of that name was given"),
    (lambda: sentence("{n}", "n > m", n=1), "uses m, which is not among the values"),
    (lambda: sentence("{n}", "n >", n=1), "is not a Python expression"),
    (lambda: sentence("{n}", "x > 0", n=1, x=np.array([1, -1])), "wrap it in all"),
    (lambda: sentence(r"$\sqrt{2}$"), "valid format template"),
    (lambda: sentence("{n}", 3 > 2, n=1), "a claim is a Python expression in a string"),
    (lambda: sentence("{n}", "n / 0 > 1", n=1), "could not be evaluated: ZeroDivisionError"),
])
def test_a_mistake_in_the_sentence_itself_says_what_to_fix(call, fix):
    with pytest.raises((ValueError, TypeError), match=fix.replace("{", r"\{").replace("}", r"\}")):
        call()


def test_a_claim_sees_only_its_values_and_a_few_builtins():
    for claim, name in [("open('x') is None", "open"), ("__import__('os') is None", "__import__")]:
        with pytest.raises(ValueError, match=f"uses {name}, which is not among the values"):
            sentence("x", claim)


def test_in_ipython_the_sentence_is_markdown_with_a_plain_text_copy():
    # a real IPython shell in a fresh process, capturing what say() publishes
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from IPython.utils.capture import capture_output\n"
        "InteractiveShell.instance()\n"
        "from segedu.prose import say\n"
        "with capture_output() as captured:\n"
        "    say('**mIoU** {x:.2f}', 'x > 0', x=0.5)\n"
        "[output] = captured.outputs\n"
        "print(repr(output.data['text/markdown']), repr(output.data['text/plain']), repr(captured.stdout))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "'**mIoU** 0.50' '**mIoU** 0.50' ''"


@pytest.mark.notebooks
def test_in_a_jupyter_kernel_say_displays_markdown():
    import nbclient
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from segedu.prose import say\nsay('{n} of {total} pixels', 'n < total', n=56, total=100)")])
    nbclient.NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    [output] = notebook.cells[0].outputs
    assert output.output_type == "display_data"
    assert output.data["text/markdown"] == "56 of 100 pixels"


def test_importing_prose_imports_neither_torch_nor_ipython():
    code = ("import sys, segedu.prose\n"
            "print(','.join(m for m in ('torch', 'IPython', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
