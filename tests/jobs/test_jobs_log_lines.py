"""Turning log bytes into lines: any chunking gives the same lines, offsets resume exactly."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from transfer.jobs import logs
from transfer.jobs.logs import LineAssembler, collapse_cr, decode_lines


def test_collapse_cr() -> None:
    assert collapse_cr("plain") == "plain"
    assert collapse_cr("10%\r50%\r100%") == "100%"
    assert collapse_cr("\r10%\r100%") == "100%"
    assert collapse_cr("windows\r") == "windows"
    assert collapse_cr("bar 1\rbar 2\r") == "bar 2"
    assert collapse_cr("") == ""


def test_lines_partial_and_offsets() -> None:
    assembler = LineAssembler()
    assert assembler.feed(b"one\ntw") == ["one"]
    assert (assembler.offset, assembler.read_pos, assembler.partial) == (4, 6, "tw")
    assert assembler.feed(b"o\n10%\r50%\r") == ["two"]
    assert assembler.partial == "50%" and assembler.offset == 8
    assert assembler.feed(b"100%\n") == ["100%"]
    assert assembler.partial is None and assembler.offset == assembler.read_pos == 21
    assert assembler.feed(b"tail") == [] and assembler.flush() == ["tail"]
    assert assembler.offset == 25


def test_multibyte_characters_split_across_reads() -> None:
    data = "café ✓\n".encode()
    assembler = LineAssembler()
    got = []
    for i in range(len(data)):
        got += assembler.feed(data[i : i + 1])
    assert got == ["café ✓"]


def test_endless_redraws_stay_bounded() -> None:
    assembler = LineAssembler()
    for i in range(20_000):
        assembler.feed(f"\rstep {i:6d} of 20000".encode())
    assert assembler.partial == "step  19999 of 20000"
    assert len(assembler._pending) < logs.MAX_REDRAWS + 64
    assert assembler.feed(b"\n") == ["step  19999 of 20000"]
    assert assembler.offset == assembler.read_pos


def test_a_line_without_end_is_cut_rather_than_held_forever() -> None:
    assembler = LineAssembler()
    lines = assembler.feed(b"x" * (logs.MAX_LINE + 10))
    assert lines == ["x" * (logs.MAX_LINE + 10)]
    assert assembler.offset == assembler.read_pos == logs.MAX_LINE + 10


log_text = st.lists(
    st.sampled_from(["a", "é", "\n", "\r", "\r\n", "progress 10%\r", "line\n", "✓"]),
    max_size=60,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=log_text, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_chunking_gives_the_same_lines(text: str, cuts: list[int]) -> None:
    data = text.encode()
    expected = decode_lines(data[: data.rfind(b"\n")]) if b"\n" in data else []
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    assembler = LineAssembler()
    got: list[str] = []
    for start, end in itertools.pairwise(bounds):
        got += assembler.feed(data[start:end])
    assert got == expected
    assert assembler.offset == (data.rfind(b"\n") + 1 if b"\n" in data else 0)


@settings(max_examples=100, deadline=None)
@given(text=log_text, stop_at=st.integers(min_value=0, max_value=400))
def test_resuming_from_the_offset_misses_and_repeats_nothing(text: str, stop_at: int) -> None:
    data = text.encode()
    first = LineAssembler()
    before = first.feed(data[: min(stop_at, len(data))])
    # A new follower (after a reconnect, or another laptop) starts at the handed-out offset.
    second = LineAssembler(first.offset)
    after = second.feed(data[first.offset :])
    whole = LineAssembler().feed(data)
    assert before + after == whole
