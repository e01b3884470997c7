"""Pytrees of ``gt.func``'s arguments and results: tuples (named ones too), lists and dicts of leaves."""




# ---- pytrees: tuples (named ones too), lists and dicts of leaves ----------------------------
def _flatten(tree):
    """``(leaves, spec)``: the leaves of ``tree`` depth first, and what ``_unflatten`` needs."""
    leaves = []

    def go(node):
        if isinstance(node, tuple):
            return ("tuple", type(node), [go(c) for c in node])
        if isinstance(node, list):
            return ("list", list, [go(c) for c in node])
        if isinstance(node, dict):
            return ("dict", (type(node), list(node)), [go(node[k]) for k in node])
        leaves.append(node)
        return None
    return leaves, go(tree)


def _unflatten(spec, leaves):
    it = iter(leaves)

    def go(s):
        if s is None:
            return next(it)
        kind, typ, children = s
        values = [go(c) for c in children]
        if kind == "dict":
            cls, keys = typ
            return cls(zip(keys, values)) if cls is dict else cls(list(zip(keys, values)))
        if kind == "tuple" and typ is not tuple:
            return typ(*values)     # a namedtuple
        return typ(values)
    return go(spec)


def _spec_str(spec):
    if spec is None:
        return "*"
    kind, typ, children = spec
    inner = ", ".join(_spec_str(c) for c in children)
    return f"{kind}({inner})" if kind != "dict" else f"dict[{', '.join(map(repr, typ[1]))}]({inner})"


def _broadcast_prefix(prefix, tree, spec_error):
    """The leaves of ``prefix`` (a pytree that is a prefix of ``tree``) repeated over the leaves of
    ``tree`` below each of them; ``spec_error()`` raises when the structures do not match."""
    out = []

    def go(p, t):
        if isinstance(p, (tuple, list, dict)):
            if type(p) is not type(t) and not (isinstance(p, tuple) and isinstance(t, tuple)):
                spec_error()
            if isinstance(p, dict):
                if set(p) != set(t):
                    spec_error()
                for k in t:
                    go(p[k], t[k])
                return
            if len(p) != len(t):
                spec_error()
            for a, b in zip(p, t):
                go(a, b)
            return
        out.extend([p] * len(_flatten(t)[0]))
    go(prefix, tree)
    return out


def _name(func):
    return getattr(func, "__name__", type(func).__name__)


def _check_randomness(randomness):
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")
