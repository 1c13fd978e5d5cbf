import pytest

from wala.config import RepresentationConfig
from wala.data import prepare


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """12 procedural shapes (3 families × 4) at 64³, in shards of 5."""
    out = tmp_path_factory.mktemp("prepared")
    prepare(["procedural:chair,mug,table:4"], out, RepresentationConfig(resolution=64), shard_size=5, progress=False)
    return out
