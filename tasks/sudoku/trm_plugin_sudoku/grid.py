"""Sudoku grids as text, digits and tokens, and vectorised checks over many grids.

Digits: 81 ints, 0 = blank. Tokens (as in the paper's reference code): digit + 1, so PAD 0,
blank 1 and the digits 1..9 are tokens 2..10; the vocabulary has 11 tokens.
"""

from __future__ import annotations

import numpy as np

VOCAB_SIZE = 11
BLANK = 1  # the blank cell's token
BLANK_CHARS = ".0"


def parse_line(text: str) -> list[int]:
    """An 81-character puzzle (``.`` or ``0`` blank) as 81 digits; ValueError says why not."""
    text = text.strip()
    if len(text) != 81:
        raise ValueError(f"expected 81 characters, got {len(text)}")
    bad = sorted({ch for ch in text if ch not in "123456789" and ch not in BLANK_CHARS})
    if bad:
        raise ValueError(
            f"unexpected character(s) {' '.join(repr(ch) for ch in bad)}; "
            "use 1-9 for digits and '.' or '0' for blanks"
        )
    return [0 if ch in BLANK_CHARS else int(ch) for ch in text]


def to_tokens(digits) -> np.ndarray:
    """Digits (0 = blank) -> tokens (blank 1, digit d -> d + 1), as uint8."""
    return np.asarray(digits, dtype=np.uint8) + 1


def to_digits(tokens) -> np.ndarray:
    """Tokens -> digits; PAD and blank both become 0 (blank)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    return np.where(tokens >= 2, tokens - 1, 0)


def to_line(digits) -> str:
    """81 digits as an 81-character line, ``.`` for a blank."""
    return "".join(str(int(d)) if d else "." for d in np.asarray(digits).ravel())


def board(digits, marks: dict[int, str] | None = None) -> str:
    """A 9x9 board drawn in text; ``marks`` puts a character after chosen cells."""
    digits = np.asarray(digits).ravel()
    marks = marks or {}
    lines = []
    for r in range(9):
        if r and r % 3 == 0:
            lines.append("------+-------+------")
        cells = []
        for c in range(9):
            if c and c % 3 == 0:
                cells.append("|")
            d = int(digits[r * 9 + c])
            cells.append((str(d) if d else ".") + marks.get(r * 9 + c, ""))
        lines.append(" ".join(cells))
    return "\n".join(lines)


def _units(grids: np.ndarray) -> np.ndarray:
    """[N, 81] digits -> [N, 27, 9]: the rows, columns and boxes of each grid."""
    g = grids.reshape(-1, 9, 9)
    boxes = g.reshape(-1, 3, 3, 3, 3).transpose(0, 1, 3, 2, 4).reshape(-1, 9, 9)
    return np.concatenate([g, g.transpose(0, 2, 1), boxes], axis=1)


def valid_solutions(grids) -> np.ndarray:
    """[N] bool: each [81] digit grid is complete and every unit holds 1..9 once."""
    grids = np.asarray(grids, dtype=np.int64).reshape(-1, 81)
    if len(grids) == 0:
        return np.zeros(0, dtype=bool)
    units = _units(grids)  # [N, 27, 9]
    in_range = ((grids >= 1) & (grids <= 9)).all(-1)
    present = np.zeros((len(grids), 27, 10), dtype=bool)
    np.put_along_axis(present, np.clip(units, 0, 9), True, axis=-1)
    return in_range & present[:, :, 1:].all(-1).all(-1)


def keeps_givens(puzzles, grids) -> np.ndarray:
    """[N] bool: every given digit of each puzzle is unchanged in the grid."""
    puzzles = np.asarray(puzzles, dtype=np.int64).reshape(-1, 81)
    grids = np.asarray(grids, dtype=np.int64).reshape(-1, 81)
    return ((puzzles == 0) | (puzzles == grids)).all(-1)
