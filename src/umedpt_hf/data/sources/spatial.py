"""Spatially disjoint splits: each source axis (or 2D image) is cut into blocks assigned to train/validation/test."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DEFAULT_PATTERN = ("train", "train", "validation", "train", "test")


@dataclass(frozen=True)
class BlockPartition:
    """Cut ``[0, length)`` into blocks of ``block`` units; block k goes to ``pattern[k % len(pattern)]``.

    The first ``gap`` units of every block belong to no split, so regions of different splits never touch.
    """

    length: int
    block: int
    pattern: tuple[str, ...] = DEFAULT_PATTERN
    gap: int = 0

    def split_of(self, start: int, stop: int) -> str | None:
        """The split that the interval ``[start, stop)`` lies in, or None if it straddles blocks or a gap."""
        if start < 0 or stop > self.length or stop <= start:
            return None
        index = start // self.block
        block_start = index * self.block
        if start < block_start + self.gap or stop > block_start + self.block:
            return None
        return self.pattern[index % len(self.pattern)]

    def windows(self, size: int, stride: int) -> list[tuple[int, int, str]]:
        """All ``(start, stop, split)`` windows of ``size`` units at ``stride`` that lie inside one block."""
        out = []
        for start in range(0, self.length - size + 1, stride):
            split = self.split_of(start, start + size)
            if split is not None:
                out.append((start, start + size, split))
        return out


@dataclass(frozen=True)
class BlockGrid:
    """Cut a ``height`` x ``width`` image into square blocks of ``block`` px, assigned to splits in a stratified way.

    The blocks are grouped into coarse regions of ``group`` (rows, columns) blocks; within each coarse region the
    blocks take the splits of ``pattern`` in a seeded random order, so every part of the image (every anatomy)
    contributes to every split in the ratio of ``pattern``, and neighbouring blocks mostly belong to different splits.
    """

    height: int
    width: int
    block: int
    pattern: tuple[str, ...] = ("train", "validation", "train", "test", "train", "test")
    group: tuple[int, int] = (3, 2)
    seed: int = 0

    def split_of_block(self, row: int, column: int) -> str:
        """The split of block (``row``, ``column``)."""
        group_rows, group_columns = self.group
        coarse = (row // group_rows, column // group_columns)
        order = np.random.default_rng([self.seed, *coarse]).permutation(len(self.pattern))
        within = (row % group_rows) * group_columns + column % group_columns
        return self.pattern[int(order[within % len(self.pattern)])]

    def windows(self, size: int, stride: int) -> list[tuple[int, int, int, int, str]]:
        """All ``(y0, y1, x0, x1, split)`` windows of ``size`` px at ``stride`` that lie wholly inside one block."""
        if size > self.block:
            raise ValueError(f"windows of {size} px do not fit into blocks of {self.block} px")
        offsets = range(0, self.block - size + 1, stride)
        out = []
        for row in range(self.height // self.block):
            for column in range(self.width // self.block):
                split = self.split_of_block(row, column)
                for dy in offsets:
                    for dx in offsets:
                        y0, x0 = row * self.block + dy, column * self.block + dx
                        out.append((y0, y0 + size, x0, x0 + size, split))
        return out


def to_square(array: np.ndarray, size: int, is_mask: bool = False) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Pad a 2D array to a square (with its minimum, or 0 for masks) and resize it to ``size``.

    Images are resized by area averaging in float32 and cast back to their dtype (HU and 16-bit kept); masks by
    nearest neighbour. Returns the result, the scale factor and the (top, left) padding in source pixels.
    """
    height, width = array.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    fill = 0 if is_mask else array.min()
    padded = np.full((side, side, *array.shape[2:]), fill, dtype=array.dtype)
    padded[top : top + height, left : left + width] = array
    return resize(padded, size, is_mask), size / side, (top, left)


def resize(array: np.ndarray, size: int, is_mask: bool = False) -> np.ndarray:
    """Resize a 2D (or HxWxC) array to ``size`` x ``size`` keeping its dtype."""
    if array.shape[0] == size and array.shape[1] == size:
        return array.copy()
    if is_mask:
        return cv2.resize(array.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    shrinking = size < array.shape[0]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    out = cv2.resize(array.astype(np.float32), (size, size), interpolation=interpolation)
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(array.dtype)


def to_uint8(array: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Scale to uint8 between ``low`` and ``high`` (default: the 1st and 99th percentiles)."""
    data = array.astype(np.float32)
    if low is None or high is None:
        low, high = np.percentile(data, [1, 99])
    scaled = (data - low) / max(float(high - low), 1e-6)
    return np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8)
