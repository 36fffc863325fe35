"""The ground's account of a node's sequence numbers (GROUND.md, "Session semantics").

Every event, sample and result carries a number, contiguous per node and kept when re-sent:
a number already seen is a duplicate to drop, and a jump is a real loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StreamSequence:
    last_seq: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first missing, last missing)
    duplicates: int = 0
    filled: int = 0  # numbers that came late, into a gap (from the archive): a gap less
    stream: int | None = None  # the numbering these belong to, as births and deaths name it

    def follow(self, stream: int | None) -> bool:
        """Take `stream` as the node's; True if it replaced another (the node lost its state,
        and numbers from 1 again): the count starts afresh instead of dropping everything."""
        if stream is None or stream == self.stream:
            return False
        restarted = self.stream is not None
        if restarted:
            self.last_seq, self.gaps, self.duplicates, self.filled = 0, [], 0, 0
        self.stream = stream
        return restarted

    def accept(self, seq: int) -> bool:
        """False for a message already seen (re-sent after a broken connection)."""
        if seq <= self.last_seq:
            for index, (first, last) in enumerate(self.gaps):
                if first <= seq <= last:  # late, not twice: the gap shrinks
                    pieces = [(a, b) for a, b in ((first, seq - 1), (seq + 1, last)) if a <= b]
                    self.gaps[index : index + 1] = pieces
                    self.filled += 1
                    return True
            self.duplicates += 1
            return False
        if self.last_seq and seq > self.last_seq + 1:
            self.gaps.append((self.last_seq + 1, seq - 1))
        self.last_seq = seq
        return True

    def missing(self) -> int:
        """Sequence numbers never received: messages lost for good."""
        return sum(last - first + 1 for first, last in self.gaps)
