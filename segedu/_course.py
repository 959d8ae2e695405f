"""The one place that says where the course lives and which release students install.

The README's "Open in Colab" badges and every notebook's setup cell are generated from these
values by ``segedu links`` (``make links``); a test fails when they drift apart. A fork that
publishes the course elsewhere changes ``REPOSITORY`` and runs ``make links``.

Students install a tagged release, never a branch, so that the package they get is the one their
exercises were generated with. ``RELEASE`` is that tag: ``v`` followed by pyproject.toml's version
(a test ties the two). How an instructor cuts a release is in the README ("Cutting a release").

>>> pip_requirement()
'segedu @ git+https://github.com/...@v...'
>>> pip_requirement(["coco"])
'segedu[coco] @ git+https://github.com/...@v...'
"""

REPOSITORY = "segedu-course/segedu"
RELEASE = "v0.1.0"


def github_url() -> str:
    return f"https://github.com/{REPOSITORY}"


def pip_requirement(extras=()) -> str:
    """What a Colab setup cell installs: the tagged release, with the extras that notebook imports."""
    name = f"segedu[{','.join(sorted(extras))}]" if extras else "segedu"
    return f"{name} @ git+{github_url()}@{RELEASE}"


def colab_url(path: str) -> str:
    """The Colab link for a notebook at ``path`` (relative to the repository root), at the release tag."""
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{RELEASE}/{path}"


# The generative-AI policy of the graded report (unit 11). The original brief gave zero marks for any
# use; that is one choice among three. Instructors pick one here and run `make links`, which rewrites
# the policy cell (marked <!-- genai-policy -->) of every notebook.
GENAI_POLICY = "disclose"
GENAI_POLICIES = {
    "forbidden": "Generative-AI tools (chatbots, code assistants) must not be used for this assignment. "
                 "A report or code produced with them earns zero marks.",
    "disclose": "You may use generative-AI tools, but you must say which ones, what for, and how you "
                "checked what they produced, in a short statement at the end of your report. "
                "Undisclosed use is treated as plagiarism.",
    "allowed": "You may use generative-AI tools freely. You remain responsible for every claim, number "
               "and line of code you submit.",
}


def genai_policy_markdown() -> str:
    """The policy cell of the assignment, from ``GENAI_POLICY``."""
    return f"<!-- genai-policy -->\n**Generative AI ({GENAI_POLICY}).** {GENAI_POLICIES[GENAI_POLICY]}"
