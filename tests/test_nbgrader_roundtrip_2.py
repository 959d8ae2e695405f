"""Round trips through real nbgrader, shard 2 of ``SHARDS`` (see ``nbgrader_roundtrip.py``)."""

import pytest
from nbgrader_roundtrip import roundtrip_tests, shard

pytestmark = pytest.mark.nbgrader

globals().update(roundtrip_tests(shard(2)))
