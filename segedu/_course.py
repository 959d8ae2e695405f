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
