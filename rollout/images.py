"""Observation images stored once, by content hash; trajectories carry the reference only."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import numpy as np
from PIL import Image


class ImageStore:
    """PNG files named by the SHA-1 of their pixels, in one folder shared by the run's actors."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def put(self, pixels: np.ndarray) -> str:
        """Store an (H, W, 3) uint8 image (once) and return its reference."""
        arr = np.ascontiguousarray(pixels, dtype=np.uint8)
        digest = hashlib.sha1(arr.tobytes() + str(arr.shape).encode()).hexdigest()
        path = self.folder / f"{digest}.png"
        if not path.exists():
            # A unique temp name: two env actors rendering the same image must not share one.
            tmp = path.with_name(f"{digest}.{uuid.uuid4().hex}.tmp.png")
            try:
                Image.fromarray(arr).save(tmp, format="PNG")
                tmp.replace(path)  # atomic: readers never see a half-written file
            finally:
                tmp.unlink(missing_ok=True)
        return digest

    def get(self, ref: str) -> Image.Image:
        path = self.folder / f"{ref}.png"
        if not path.is_file():
            raise FileNotFoundError(f"image {ref} is not in the image store {self.folder}")
        with Image.open(path) as img:
            return img.convert("RGB")
