"""Python's object protocols on a tensor as torch has them: ``reversed(t)``, ``pickle`` and
``copy.deepcopy``.

torch pickles a tensor's values, dtype and ``requires_grad``, not its ``.grad`` nor the graph
that computed it (a computed tensor loads as a leaf), while ``copy.deepcopy`` copies ``.grad``
too. Both go through ``__reduce_ex__`` by default, so the deep copy has its own method here.

Mixed into ``gt.Tensor``.
"""

import copy

# slots a pickled tensor leaves behind, with the value the loaded one gets; ``_id`` names one
# tensor only, so no copy takes it (nor the links of a view to its base: a copy is no view)
_NOT_PICKLED = {"_ctx": None, "_grad_value": None, "_grad_factors": None, "_retains_grad": False, "_view": None,
                "_mesh_base": None}


class ObjectMethods:
    __slots__ = ()

    def __reversed__(self):
        """The tensor flipped along axis 0 (differentiable); a 0-d tensor is itself, as torch's."""
        return self if self.ndim == 0 else self.flip(0)

    def __reduce_ex__(self, protocol):
        """torch's pickling: the values, dtype, ``requires_grad`` (and placement), no ``.grad`` and no graph."""
        reduced = object.__reduce_ex__(self, protocol)
        if len(reduced) > 2 and isinstance(reduced[2], tuple) and reduced[2][1]:
            attributes, slots = reduced[2]
            slots = {name: _NOT_PICKLED.get(name, value) for name, value in slots.items() if name != "_id"}
            reduced = reduced[:2] + ((attributes, slots),) + reduced[3:]
        return reduced

    def __deepcopy__(self, memo):
        """A copy of the values with the same dtype, ``requires_grad`` and a copy of ``.grad``, as
        torch's. A subclass with a copy rule of its own (a ``Parameter``'s copy has no ``.grad``)
        keeps it. A computed tensor is copied with its graph (torch refuses it)."""
        own_rule = type(self).__reduce_ex__ is not ObjectMethods.__reduce_ex__
        reduced = self.__reduce_ex__(4) if own_rule else object.__reduce_ex__(self, 4)
        func, args = reduced[0], reduced[1]
        state = reduced[2] if len(reduced) > 2 else None
        new = func(*copy.deepcopy(args, memo))
        memo[id(self)] = new
        if state:
            attributes, slots = state if isinstance(state, tuple) else (state, None)
            for name, value in (slots or {}).items():
                if name not in ("_id", "_view", "_mesh_base"):      # a copy is no view, as torch's
                    object.__setattr__(new, name, copy.deepcopy(value, memo))
            if attributes:
                new.__dict__.update(copy.deepcopy(attributes, memo))
        return new
