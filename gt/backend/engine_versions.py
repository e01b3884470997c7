"""Version counters set back (``gt.func.vmap``): the engine's side of ``version_state`` and
``set_version_state``. ``vmap`` runs its function once per batch element and makes a captured
tensor's change once, as torch's (gt/autograd/levels.py): before each later element's run it puts
the values back, and with them the version counter, so that each element's changes count as the
first element's did and the tensor's ``_version`` after the call is torch's (a backward that saved
the changed values then finds the version it saved). Inherited by ``FastPaths``
(gt/backend/engine_defaults.py: the counts gt keeps itself); the torch engine's are torch's
counters (gt/backend/torch_versions.py)."""


class VersionStates:
    def version_state(self, arr):
        """What ``set_version_state`` takes to put ``arr``'s memory's version counter back as it is
        now (its count and, here, when it last moved: ``changed_since`` compares that)."""
        entry = self._version_entry(arr)
        return None if entry is None else (entry[1], entry[2])

    def set_version_state(self, arr, state):
        """Put ``arr``'s memory's version counter back to ``state`` (``version_state``'s)."""
        entry = self._version_entry(arr)
        if entry is None:
            if state is None:
                return
            self.bump_version(arr)
            entry = self._version_entry(arr)
        entry[1], entry[2] = state if state is not None else (0, 0)
