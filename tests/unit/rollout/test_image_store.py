"""The image store: content-addressed PNGs that concurrent writers cannot corrupt."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rollout.images import ImageStore


def test_concurrent_writers_of_one_image_all_succeed(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    stores = [ImageStore(tmp_path) for _ in range(8)]  # as 8 env actors would share the folder
    with ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(lambda s: s.put(pixels), stores * 4))
    assert len(set(refs)) == 1
    assert np.array_equal(np.asarray(stores[0].get(refs[0])), pixels)
    assert [p.name for p in tmp_path.iterdir()] == [f"{refs[0]}.png"]  # no temp file left
