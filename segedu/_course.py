"""The one place that says where the course lives.

The README's "Open in Colab" badges and every notebook's setup cell are generated from these
values by ``segedu links`` (``make links``); a test fails when they drift apart. A fork that
publishes the course elsewhere changes these two lines and runs ``make links``.
"""

REPOSITORY = "segedu-course/segedu"
BRANCH = "main"


def github_url() -> str:
    return f"https://github.com/{REPOSITORY}"


def pip_requirement() -> str:
    """What Colab's setup cell installs."""
    return f"segedu @ git+{github_url()}@{BRANCH}"


def colab_url(path: str) -> str:
    """The Colab link for a notebook at ``path`` (relative to the repository root)."""
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/{path}"


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
