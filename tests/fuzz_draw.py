"""The differential fuzzers' draws (tests/test_fuzz_*_parity.py): hypothesis' ``data.draw`` with each
named choice recorded in ``notes``, so that a failure names its example."""

from hypothesis import strategies as st


class Draw:
    def __init__(self, data):
        self.data, self.notes = data, {}

    def pick(self, options, name=None):
        value = self.data.draw(st.sampled_from(list(options)))
        if name:
            self.notes[name] = value
        return value

    def int(self, lo, hi, name=None):
        value = self.data.draw(st.integers(lo, hi))
        if name:
            self.notes[name] = value
        return value
