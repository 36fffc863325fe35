"""The deframer: boundary-independent, recovers from anything, never grows."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from protocols.framing import (
    MAX_ENCODED,
    MAX_PAYLOAD,
    Deframer,
    Frame,
    Kind,
    RejectReason,
    encode_frame,
)

FrameSpec = tuple[Kind, int, int, bytes, bool]

frame_specs = st.tuples(
    st.sampled_from(list(Kind)),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.binary(max_size=MAX_PAYLOAD),
    st.booleans(),
)


def wire(spec: FrameSpec) -> bytes:
    kind, msg_type, seq, payload, retry = spec
    return encode_frame(kind, msg_type, seq, payload, retry=retry)


def key(frame: Frame) -> FrameSpec:
    return (frame.kind, frame.msg_type, frame.seq, frame.payload, frame.retry)


def frames_of(items: list[object]) -> list[FrameSpec]:
    return [key(i) for i in items if isinstance(i, Frame)]


def feed_in_pieces(deframer: Deframer, data: bytes, cuts: list[int]) -> list[object]:
    out: list[object] = []
    last = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out += deframer.feed(data[last:cut])
        last = cut
    return out


@given(specs=st.lists(frame_specs, max_size=8), cuts=st.lists(st.integers(0, 5000), max_size=40))
def test_same_frames_whatever_the_read_boundaries(specs: list[FrameSpec], cuts: list[int]) -> None:
    stream = b"".join(wire(s) for s in specs)
    whole = Deframer().feed(stream)
    pieces = feed_in_pieces(Deframer(), stream, cuts)
    assert frames_of(pieces) == frames_of(whole) == specs
    assert [i for i in pieces if not isinstance(i, Frame)] == []


@given(garbage=st.binary(max_size=2000), specs=st.lists(frame_specs, min_size=1, max_size=4))
def test_recovers_on_the_first_valid_frame_after_garbage(
    garbage: bytes, specs: list[FrameSpec]
) -> None:
    got = frames_of(Deframer().feed(garbage + b"".join(wire(s) for s in specs)))
    assert got[-len(specs) :] == specs


@given(
    broken=frame_specs,
    keep=st.integers(1, 300),
    specs=st.lists(frame_specs, min_size=1, max_size=4),
)
def test_recovers_after_a_truncated_frame(
    broken: FrameSpec, keep: int, specs: list[FrameSpec]
) -> None:
    cut = wire(broken)[: min(keep, len(wire(broken)) - 2)]  # never its final delimiter
    got = frames_of(Deframer().feed(cut + b"".join(wire(s) for s in specs)))
    assert got == specs


@given(partial=st.binary(max_size=600), specs=st.lists(frame_specs, min_size=1, max_size=3))
def test_reset_forgets_a_partial_frame(partial: bytes, specs: list[FrameSpec]) -> None:
    deframer = Deframer()
    deframer.feed(partial)
    deframer.reset()
    assert frames_of(deframer.feed(b"".join(wire(s) for s in specs))) == specs


@given(
    run=st.integers(MAX_ENCODED + 1, 200_000),
    fill=st.integers(1, 255),
    chunk=st.integers(1, 70_000),
)
def test_a_run_without_delimiters_is_dropped_and_memory_stays_bounded(
    run: int, fill: int, chunk: int
) -> None:
    deframer = Deframer()
    data = bytes([fill]) * run
    for start in range(0, run, chunk):
        assert deframer.feed(data[start : start + chunk]) == []
        assert deframer.buffered <= MAX_ENCODED
    spec: FrameSpec = (Kind.REPLY, 0x20, 7, b"ok", False)
    items = deframer.feed(wire(spec))
    rejected = [i for i in items if not isinstance(i, Frame)]
    assert [r.reason for r in rejected] == [RejectReason.OVERSIZE]
    assert rejected[0].length == run and rejected[0].offset == 0
    assert frames_of(items) == [spec]
    assert deframer.stats.resyncs == 1


class DeframerMachine(RuleBasedStateMachine):
    """Interleave frames, garbage, truncations, resets and arbitrary read sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.deframer = Deframer()
        self.expected: list[FrameSpec] = []
        self.got: list[FrameSpec] = []
        self.pending = b""  # bytes we still have to deliver
        self.clean = True  # whether the current pending frame is intact

    def _deliver(self, size: int) -> None:
        chunk, self.pending = self.pending[:size], self.pending[size:]
        self.got += frames_of(self.deframer.feed(chunk))

    @rule(spec=frame_specs)
    def send_frame(self, spec: FrameSpec) -> None:
        self.pending += wire(spec)
        self.expected.append(spec)

    @rule(garbage=st.binary(min_size=1, max_size=400))
    def send_garbage(self, garbage: bytes) -> None:
        self.pending += garbage

    @rule(spec=frame_specs, keep=st.integers(1, 100))
    def send_truncated_frame(self, spec: FrameSpec, keep: int) -> None:
        self.pending += wire(spec)[: min(keep, len(wire(spec)) - 2)]

    @rule(size=st.integers(1, 700))
    def read(self, size: int) -> None:
        self._deliver(size)

    @precondition(lambda self: not self.pending)
    @rule()
    def reset_between_frames(self) -> None:
        self.deframer.reset()

    @invariant()
    def memory_is_bounded(self) -> None:
        assert self.deframer.buffered <= MAX_ENCODED

    @invariant()
    def frames_come_out_in_order_and_intact(self) -> None:
        assert self.got == self.expected[: len(self.got)]

    def teardown(self) -> None:
        self._deliver(len(self.pending))
        assert self.got == self.expected


TestDeframerMachine = DeframerMachine.TestCase


delimited_runs = st.binary(max_size=300).map(
    lambda b: b"\x00" + b.replace(b"\x00", b"\x01") + b"\x00"
)


@given(
    reads=st.lists(st.one_of(frame_specs.map(wire), delimited_runs), min_size=1, max_size=6),
    flips=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 300), st.integers(1, 255)), max_size=4
    ),
)
@example(reads=[b"\x00\x00"], flips=[])
@example(reads=[b"\x00" + b"\x01" * (MAX_ENCODED + 1) + b"\x00"], flips=[])
@example(reads=[b"\x00\x05\x00"], flips=[])
def test_a_read_of_one_whole_frame_decodes_as_the_buffered_path_would(
    reads: list[bytes], flips: list[tuple[int, int, int]]
) -> None:
    """A read holding exactly one delimited run is decoded without the buffer. Frames or any
    run (empty, short, bad COBS or CRC, oversize), corrupted or not: the items, offsets and
    counters must be the buffered path's for the same reads (a bytearray always takes it)."""
    edited = [bytearray(read) for read in reads]
    for index, at, xor in flips:
        read = edited[index % len(edited)]
        read[at % len(read)] ^= xor
    shortcut, buffered = Deframer(), Deframer()
    by_shortcut = [item for read in edited for item in shortcut.feed(bytes(read))]
    by_buffer = [item for read in edited for item in buffered.feed(bytearray(read))]
    assert by_shortcut == by_buffer
    assert shortcut.stats == buffered.stats
    assert shortcut.buffered == buffered.buffered
    assert shortcut.finish() == buffered.finish()
