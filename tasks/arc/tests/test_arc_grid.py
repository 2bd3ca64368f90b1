"""The canvas encoding and the augmentations: exact round trips (Hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from trm_plugin_arc.augment import DIHEDRAL, INVERSE, Augmentation, dihedral, translation
from trm_plugin_arc.grid import (
    MARKER,
    PAD,
    GridError,
    check_grid,
    crop,
    crop_many,
    decode,
    encode,
    parse_grid,
)


@st.composite
def grids(draw, max_side=30):
    rows, cols = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    return draw(arrays(np.uint8, (rows, cols), elements=st.integers(0, 9)))


@st.composite
def augmentations(draw):
    k = draw(st.integers(0, len(DIHEDRAL) - 1))
    colours = draw(st.permutations(range(1, 10)))
    return Augmentation(k, (0, *colours))


@st.composite
def placed(draw):
    """A grid and an offset at which it fits the 30x30 canvas."""
    grid = draw(grids())
    top = draw(st.integers(0, 30 - grid.shape[0]))
    left = draw(st.integers(0, 30 - grid.shape[1]))
    return grid, (top, left)


@settings(max_examples=300, deadline=None)
@given(grids(), augmentations())
def test_encode_augment_then_inverse_decode_gives_the_grid_back(grid, augmentation):
    tokens = encode(augmentation.apply(grid))  # what the model sees, at the origin
    assert tokens.shape == (900,)
    back = augmentation.invert(crop(tokens))  # what the evaluator does with an answer
    np.testing.assert_array_equal(back, grid)
    np.testing.assert_array_equal(augmentation.invert(decode(tokens)), grid)
    np.testing.assert_array_equal(augmentation.apply(augmentation.invert(grid)), grid)


@settings(max_examples=300, deadline=None)
@given(placed())
def test_a_translated_grid_with_its_markers_decodes_to_its_original_size(case):
    grid, (top, left) = case
    tokens = encode(grid, 30, (top, left))
    decoded = decode(tokens)
    assert decoded.shape == grid.shape
    np.testing.assert_array_equal(decoded, grid)
    canvas = tokens.reshape(30, 30)
    rows, cols = grid.shape
    # The markers: the row below and the column right of the grid, where the canvas has room.
    if top + rows < 30:
        assert (canvas[top + rows, left : left + cols] == MARKER).all()
    if left + cols < 30:
        assert (canvas[top : top + rows, left + cols] == MARKER).all()
    expected_markers = cols * (top + rows < 30) + rows * (left + cols < 30)
    assert (canvas == MARKER).sum() == expected_markers
    assert (canvas == PAD).sum() == 900 - rows * cols - expected_markers


@settings(max_examples=100, deadline=None)
@given(grids(max_side=12), grids(max_side=12), st.integers(0, 2**63 - 1))
def test_translation_places_input_and_output_at_one_offset_that_fits_both(a, b, seed):
    top, left = translation([a.shape, b.shape], 12, seed)
    for grid in (a, b):
        np.testing.assert_array_equal(decode(encode(grid, 12, (top, left))), grid)


def test_the_eight_transforms_and_their_inverses():
    grid = np.arange(12, dtype=np.uint8).reshape(3, 4)
    images = {dihedral(grid, k).tobytes() + bytes(dihedral(grid, k).shape) for k in range(8)}
    assert len(images) == 8  # all distinct on an asymmetric grid
    assert INVERSE[1] == 3 and INVERSE[3] == 1
    for k in range(8):
        np.testing.assert_array_equal(dihedral(dihedral(grid, k), INVERSE[k]), grid)
    np.testing.assert_array_equal(dihedral(grid, 1), np.rot90(grid))
    np.testing.assert_array_equal(dihedral(grid, 6), grid.T)
    np.testing.assert_array_equal(dihedral(grid, 7), np.rot90(grid, 2).T)


def test_colour_zero_stays_and_bad_maps_are_refused():
    augmentation = Augmentation(0, (0, 2, 3, 4, 5, 6, 7, 8, 9, 1))
    np.testing.assert_array_equal(augmentation.apply(np.array([[0, 1, 9]])), [[0, 2, 1]])
    with pytest.raises(ValueError, match="fixing 0"):
        Augmentation(0, (1, 0, 2, 3, 4, 5, 6, 7, 8, 9))
    with pytest.raises(ValueError, match="0-7"):
        Augmentation(8)
    assert Augmentation.from_row(augmentation.to_row()) == augmentation


def test_crop_reads_the_largest_colour_rectangle_at_the_origin():
    grid = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    tokens = encode(grid, 10).reshape(10, 10)
    np.testing.assert_array_equal(crop(tokens.reshape(-1)), grid)
    broken = tokens.copy()
    broken[1, 2] = PAD  # a hole in the second row: the widest full rectangle wins
    np.testing.assert_array_equal(crop(broken.reshape(-1)), grid[:, :2])
    empty = np.zeros(100, dtype=np.uint8)
    assert crop(empty) is None
    assert crop_many(np.stack([tokens.reshape(-1), empty]))[1] is None
    assert crop_many(np.zeros((0, 100))) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([[0] * 31], "31 columns, more than 30"),
        ([[0]] * 31, "31 rows, more than 30"),
        ([[0, 1], [2]], "ragged rows: row 2 has 1 cells, row 1 has 2"),
        ([[0, 10]], "row 1, column 2: colour 10 is not 0-9"),
        ([[0, True]], "colour True is not 0-9"),
        ([], "non-empty list of rows"),
        ([[]], "row 1 is not a non-empty list"),
    ],
)
def test_bad_grids_say_what_is_wrong(value, message):
    with pytest.raises(GridError, match=message):
        check_grid(value)


def test_typed_grids_and_canvas_limits():
    np.testing.assert_array_equal(parse_grid("0 1 2\n3,4,5\n"), [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(parse_grid("[[7, 8], [9, 0]]"), [[7, 8], [9, 0]])
    with pytest.raises(GridError, match="row 2: 'x' is not a colour"):
        parse_grid("01\n0x\n")
    with pytest.raises(GridError, match="does not fit a 10x10 canvas"):
        encode(np.zeros((11, 3), dtype=np.uint8), 10)
    full = np.ones((10, 10), dtype=np.uint8)  # no room for markers: the edge ends the grid
    np.testing.assert_array_equal(decode(encode(full, 10)), full)
    with pytest.raises(GridError, match="no grid"):
        decode(np.zeros(100, dtype=np.uint8))
