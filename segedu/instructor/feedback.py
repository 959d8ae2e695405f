"""nbgrader plugin: feedback that does not give hidden tests away.

nbgrader's ``ClearHiddenTests`` removes the hidden region from a test cell's source, but a failing
hidden test still prints a traceback that quotes the hidden lines. This preprocessor runs first and
shortens the error output of every cell that holds hidden tests to its last line, the message,
which names the case and not its inputs (see ``segedu.grading``).
"""

from __future__ import annotations

import re
import threading

from jinja2 import BytecodeCache
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
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


class _CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates kept for the life of the process, keyed by jinja's own checksum
    of the template's source (a changed template compiles again)."""

    def __init__(self):
        self._code: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket):
        with self._lock:
            code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket):
        with self._lock:
            self._code[bucket.key] = bucket.bytecode_to_string()


_TEMPLATES = _CompiledTemplates()


NO_ALT = re.compile(r"<img(?![^>]*\balt=)", re.I)
NO_ALT_TEXT = "No description has been provided for this image"


class FeedbackHTMLExporter(HTMLExporter):
    """nbconvert's HTML exporter, made cheap enough to run hundreds of times in one grading worker.

    It compiles the feedback templates once per process (compiling took half of each page's time),
    and gives images without alternative text one with a regular expression instead of parsing the
    whole page with BeautifulSoup, as nbconvert does for the JupyterLab template: nbgrader's
    feedback template has no JupyterLab cells to make focusable, so only the alt text is left to add
    (a page with JupyterLab cells goes through nbconvert's own pass).
    """

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = _TEMPLATES
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):
        lexer_info = nb.metadata.get("language_info", {})
        lexer = lexer_info.get("pygments_lexer", lexer_info.get("name", None))
        self.register_filter("highlight_code", self.filters.get("highlight_code",
                                                                Highlight2HTML(pygments_lexer=lexer, parent=self)))
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata,
                                                                        parent=self, resources=resources))
        html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        if "jp-Notebook" in html:
            return super().from_notebook_node(nb, resources, **kw)
        return NO_ALT.sub(f'<img alt="{NO_ALT_TEXT}"', html), resources
