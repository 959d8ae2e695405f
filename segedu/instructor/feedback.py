"""nbgrader plugin: feedback that does not give hidden tests away.

nbgrader's ``ClearHiddenTests`` removes the hidden region from a test cell's source, but a failing
hidden test still prints a traceback that quotes the hidden lines. This preprocessor runs first and
shortens the error output of every cell that holds hidden tests to its last line, the message,
which names the case and not its inputs (see ``segedu.grading``).
"""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

HIDDEN_MARK = "BEGIN HIDDEN TESTS"


class ShortenHiddenTracebacks(Preprocessor):
    enabled = Bool(True, help="nbconvert preprocessors are off unless enabled").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or HIDDEN_MARK not in cell.source:
            return cell, resources
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                message = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
                output["traceback"] = [message]
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                output["text"] = "(hidden test output removed)\n"
        return cell, resources
