"""L-BFGS: quasi-Newton steps from a short history of gradient changes, with an optional strong-Wolfe line search.

The algorithm is torch's (itself minFunc's), step for step: the same directions, step lengths,
stopping tests and state, so a problem solved with ``torch.optim.LBFGS`` takes the same path
here. The vectors are 1-D tensors over every parameter's elements, concatenated in parameter
order; the scalars made from them (curvatures, directional derivatives, step lengths) stay 0-d
tensors of the parameters' dtype, as in torch (float32 problems compute them in float32).
"""

import collections

from gt import autograd
from gt.backend import B
from gt.tensor import Tensor, cat, zeros
from gt.tensor.inplace import bump_versions
from gt.optim.optimizer import Optimizer, _is_number
from gt.optim.options import check, check_numbers

_GROUP_ERROR = "LBFGS doesn't support per-parameter options (parameter groups)"


class LBFGS(Optimizer):
    """torch's L-BFGS. ``step(closure)`` runs up to ``max_iter`` iterations (at most ``max_eval``
    evaluations of ``closure``, default ``max_iter * 5 // 4``) and returns the first loss.

    ``closure()`` must clear the gradients, compute the loss, call ``backward()`` and return the
    loss. Each iteration moves along ``d``, the L-BFGS direction from the last ``history_size``
    pairs (parameter change, gradient change), by ``lr`` (the first iteration ever: by
    ``min(1, 1 / sum|g|) * lr``) or, with ``line_search_fn='strong_wolfe'``, by a step length
    meeting the strong Wolfe conditions. It stops early when ``max|g| <= tolerance_grad``, or the
    step or the change of the loss is below ``tolerance_change``.

    One parameter group only (as torch). The state, kept with the first parameter as torch does:
    ``func_evals``, ``n_iter`` (counted over all steps), ``d``, ``t``, ``old_dirs``, ``old_stps``,
    ``ro``, ``al``, ``H_diag``, ``prev_flat_grad``, ``prev_loss``; ``state_dict()`` gives the
    tensors among them as numpy arrays (``ro``, ``al``: lists of 0-d ones), and torch's state
    dicts load.

        >>> opt = gt.optim.LBFGS([w], lr=1, line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad(); loss = ((x @ w - y) ** 2).mean(); loss.backward(); return loss
        >>> opt.step(closure)
    """

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        counts = dict(max_iter=max_iter, history_size=history_size, **({} if max_eval is None else
                                                                          {"max_eval": max_eval}))
        check_numbers(type(self).__name__, lr=lr, tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                      **counts)
        check(0.0 <= lr, f"Invalid learning rate: {lr}")
        if line_search_fn is not None and not isinstance(line_search_fn, str):
            raise TypeError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        self._params = self.param_groups[0]["params"]

    def add_param_group(self, param_group):
        if self.param_groups:
            raise ValueError(_GROUP_ERROR)
        super().add_param_group(param_group)

    def _check_group(self, group):
        # the tolerances may be any real number in torch; only lr is range-checked
        super()._check_group({k: v for k, v in group.items() if k in ("lr", "params")})

    def _numel(self):
        return sum(p.numel() for p in self._params)

    # ---- the flat views of the parameters ----------------------------------------------------
    def _gather_flat_grad(self):
        views = [zeros(p.numel(), dtype=p.dtype) if p.grad is None else _dense(p.grad).reshape(-1)
                 for p in self._params]
        return cat(views, 0)

    def _add_grad(self, step_size, update):
        offset = 0
        for p in self._params:
            numel = p.numel()
            p.add_(update[offset:offset + numel].reshape(p.shape), alpha=float(step_size))
            offset += numel

    def _clone_param(self):
        return [p.clone() for p in self._params]

    def _set_param(self, params_data):
        for p, data in zip(self._params, params_data):
            p.copy_(data)

    def _directional_evaluate(self, closure, x, t, d):
        self._add_grad(t, d)
        loss = float(_evaluate(closure))
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    # ---- the step ----------------------------------------------------------------------------
    @autograd.no_grad()
    def step(self, closure):
        """Run up to ``max_iter`` L-BFGS iterations; ``closure()`` re-evaluates the loss and its
        gradients (gradients on). Returns the loss of the first evaluation."""
        if closure is None or not callable(closure):
            raise TypeError(f"LBFGS.step needs a closure that computes the loss and its gradients, got {closure!r}")
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]

        state = self.state.setdefault(self._params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = _evaluate(closure)
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1

        flat_grad = self._gather_flat_grad()
        if _abs_max(flat_grad) <= tolerance_grad:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # the descent direction
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y.dot(s)
                if ys > 1e-10:   # keep the pair only where the curvature is positive
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / y.dot(y)

                # the two-loop recursion: d = -H g with H the L-BFGS inverse Hessian
                num_old = len(old_dirs)
                if "al" not in state:
                    state["al"] = [None] * history_size
                al = state["al"]
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = old_stps[i].dot(q) * ro[i]
                    q.add_(old_dirs[i], alpha=-float(al[i]))
                d = r = q * H_diag
                for i in range(num_old):
                    be_i = old_dirs[i].dot(r) * ro[i]
                    r.add_(old_stps[i], alpha=float(al[i] - be_i))

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.clone()
            else:
                prev_flat_grad.copy_(flat_grad)
            prev_loss = loss

            # the step length
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / flat_grad.abs().sum()) * lr
            else:
                t = lr

            gtd = flat_grad.dot(d)   # the directional derivative
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                if line_search_fn != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                x_init = self._clone_param()

                def obj_func(x, t, d):
                    return self._directional_evaluate(closure, x, t, d)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(obj_func, x_init, t, d, loss, flat_grad, gtd,
                                                                  max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = _abs_max(flat_grad) <= tolerance_grad
            else:
                self._add_grad(t, d)
                if n_iter != max_iter:
                    # the last iteration's point is not evaluated (torch's choice: with
                    # stochastic losses, that evaluation would be wasted)
                    loss = float(_evaluate(closure))
                    flat_grad = self._gather_flat_grad()
                    opt_cond = _abs_max(flat_grad) <= tolerance_grad
                    ls_func_evals = 1

            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # the stopping tests
            if n_iter == max_iter:
                break
            if current_evals >= max_eval:
                break
            if opt_cond:
                break
            if _abs_max(d * t) <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        bump_versions(self._params)
        return orig_loss

    # ---- checkpoints -------------------------------------------------------------------------
    def state_dict(self):
        """torch's layout: ``{'state': {0: {...}}, 'param_groups': [...]}``; vectors as numpy copies."""
        out = super().state_dict()
        for saved in out["state"].values():
            for key, value in saved.items():
                if isinstance(value, list):
                    saved[key] = [B.to_numpy(B.copy(v._data)) if isinstance(v, Tensor) else v for v in value]
        return out

    def load_state_dict(self, state_dict):
        """Restore a state saved by ``state_dict()`` (gt's or torch's). Vectors must have one element
        per parameter element; otherwise a ValueError says which, and nothing is loaded."""
        try:
            saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError("load_state_dict expects a dict with 'state' and 'param_groups' entries") from None
        if len(saved_groups) != 1:
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter group(s); LBFGS has one")
        group = self.param_groups[0]
        if len(saved_groups[0]["params"]) != len(group["params"]):
            raise ValueError(f"parameter group 0: the loaded state dict has {len(saved_groups[0]['params'])} "
                             f"parameters, this optimizer has {len(group['params'])}")
        new_group = dict(saved_groups[0], params=group["params"])   # not checked, as torch (see Optimizer)
        numel, dtype = self._numel(), self._params[0].dtype
        state = {}
        for key, saved in saved_state.items():
            if int(key) != saved_groups[0]["params"][0]:
                raise ValueError(f"loaded state has an entry for parameter {key}; LBFGS keeps its state "
                                 "with the first parameter only")
            state = {name: _import(name, value, numel, dtype) for name, value in saved.items()}
        self.state = collections.defaultdict(dict, {self._params[0]: state} if state else {})
        self.param_groups[:] = [new_group]
        self._params = new_group["params"]


def _evaluate(closure):
    with autograd.enable_grad():
        return closure()


def _abs_max(v):
    return v.abs().max() if v.numel() else 0.0


def _import(name, value, numel, dtype):
    if isinstance(value, (list, tuple)):
        return [_import(name, v, numel, dtype) for v in value]
    if value is None or _is_number(value):
        return value
    if not hasattr(value, "shape"):
        raise ValueError(f"loaded LBFGS state '{name}' must be a number or an array, got {type(value).__name__}")
    if len(value.shape) != 0 and tuple(value.shape) != (numel,):   # 0-d: t, ro, al, H_diag
        raise ValueError(f"loaded LBFGS state '{name}' has shape {tuple(value.shape)}; the parameters have "
                         f"{numel} elements in all")
    data = value._data if isinstance(value, Tensor) else value
    return Tensor._wrap(B.asarray(data, dtype=dtype, copy=True))


# ---- the line search (torch's, from minFunc's polyinterp and lswolfe) --------------------------
def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through ``(x1, f1)``, ``(x2, f2)`` with slopes ``g1``, ``g2``,
    clamped to ``bounds`` (default: between the points); their midpoint where it has none."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = d2_square.sqrt() if isinstance(d2_square, Tensor) else d2_square ** 0.5
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


# torch's _strong_wolfe step for step (bracketing, then zoom), kept in one piece so that the two
# read side by side: a trajectory equal to torch's depends on every branch being the same
def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """A step length ``t`` along ``d`` meeting the strong Wolfe conditions (bracket, then zoom).
    Returns ``(loss, flat_grad, t, evaluations)``."""
    d_norm = _abs_max(d)
    g = g.clone()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)

    # bracket an interval containing a point that meets the conditions
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.clone()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.clone()], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.clone(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # zoom: shrink the bracket until a point meets the conditions
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])

        # a trial too near an end of the bracket, twice in a row or outside it, moves to 0.1 of
        # the bracket's length from that end
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            # no sufficient decrease, or not below the low end: the trial becomes the high end
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.clone(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.clone(), gtd_new

    t = bracket[low_pos]
    return bracket_f[low_pos], bracket_g[low_pos], t, ls_func_evals


def _dense(grad):
    """``grad`` as a dense tensor (torch's LBFGS reads a sparse gradient, ``Embedding(sparse=True)``'s, densely)."""
    return grad.to_dense() if grad.is_sparse else grad
