"""The torch engine's version counters set back (see gt/backend/engine_versions.py): torch's own,
through torch's setter of a storage's counter (views share it)."""

import torch


class TorchVersions:
    def version_state(self, arr):
        return arr._version

    def set_version_state(self, arr, state):
        torch._C._autograd._unsafe_set_version_counter((arr,), (state,))
