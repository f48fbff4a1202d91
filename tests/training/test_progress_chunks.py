"""chunk_starts: every item once, a bar on stderr that --quiet silences."""

import pytest

from odeflow.training.progress import chunk_starts


@pytest.mark.parametrize("n,batch", [(10, 3), (9, 3), (1, 500), (0, 4)])
def test_chunks_cover_every_item_once(n, batch):
    covered = [i for start in chunk_starts(n, batch, enabled=False) for i in range(start, min(start + batch, n))]
    assert covered == list(range(n))


@pytest.mark.parametrize("enabled", [True, False])
def test_bar_shows_label_unless_quiet(enabled, capsys):
    list(chunk_starts(2000, 100, "bits/dim", enabled=enabled))
    err = capsys.readouterr().err
    assert ("bits/dim" in err) == enabled
