"""The optional fast paths of the engine interface (gt/backend/engine.py), with working defaults.

Each default is written from the required primitives, so a new engine runs without them; an
engine overrides one where its library does better (a fused kernel, a reused buffer, a BLAS
call). ``Engine`` inherits these; nothing else should.
"""

import functools
import itertools
import math
import weakref

from gt.backend.engine_overlaps import OverlapPaths
from gt.backend.engine_quantized import QuantizedPaths


class FastPaths(QuantizedPaths, OverlapPaths):
    def ascontiguous(self, x):
        """``x`` itself where it is row-major without gaps, else a row-major copy (``Tensor.contiguous``;
        the default counts on ``copy`` laying its copy out row-major, as numpy's does)."""
        return x if self.is_contiguous(x) else self.copy(x)

    def element_strides(self, arr):
        """The step, in elements, from one index to the next along each axis (numpy's byte strides
        over the item size by default; the torch engine gives torch's own)."""
        return tuple(s // arr.itemsize for s in arr.strides)

    def data_address(self, arr):
        """The address of ``arr``'s first element (numpy's array interface by default)."""
        return arr.__array_interface__["data"][0]

    def write_refusal(self, arr):
        """Why a write into ``arr`` may not happen, or None: ``"overlap"`` when two of its elements
        lie in one memory location as torch refuses to write into (an axis of more than one
        element with stride 0: an expanded tensor), and also ``"read-only"`` when the engine
        cannot write there at all (numpy's broadcast views); ``"read-only view"`` for a read-only
        view without overlaps (a row or the diagonal of numpy's broadcast view), where torch writes."""
        strides = self.element_strides(arr)
        writeable = getattr(getattr(arr, "flags", None), "writeable", True)
        if 0 not in strides or 0 in arr.shape or not any(s == 0 and n > 1 for n, s in zip(arr.shape, strides)):
            return None if writeable else "read-only view"
        return "read-only" if not writeable else "overlap"

    def matmul_lowp(self, a, b, dtype, result=None):
        """``a @ b`` with both inputs rounded to the low-precision gt ``dtype`` (bfloat16), the result
        in the gt dtype ``result`` (default: the first input's). Available where ``supports_bfloat16``
        (autocast checks it)."""
        if not self.supports_bfloat16:
            raise TypeError(f"the {self.name} engine has no {dtype} arithmetic (supports_bfloat16 is False)")
        out = self.matmul(self.astype(a, dtype), self.astype(b, dtype))
        return self.astype(out, self.dtype_of(a) if result is None else result)

    def storage_size(self, arr):
        """How many elements of ``arr``'s dtype the memory it lies in holds (the extent of the
        storage ``strided_view`` reads), or None where the engine makes no strided views (the
        default: callers copy)."""
        return None

    def clone(self, arr):
        """torch's ``clone``: ``copy`` whose axes keep the order of their strides, dense (a transposed
        array's clone is transposed; an expanded one's row-major). The default: ``copy``."""
        return self.copy(arr)

    def element_offset(self, arr):
        """Where ``arr``'s first element lies in the memory of the array owning it, in elements of
        its dtype (torch's ``storage_offset``), or None where the engine cannot tell: by default an
        array of no elements (numpy keeps no place for an empty slice)."""
        if 0 in tuple(arr.shape):
            return None
        return (self.data_address(arr) - self.data_address(self.memory_owner(arr))) // self.dtype_of(arr).itemsize

    def strided_view(self, arr, size, stride, offset):
        """The view of the memory ``arr`` lies in whose element ``i`` is at ``offset + sum(i_k *
        stride_k)`` elements from the memory's start (torch's ``as_strided``; the caller checks
        the bounds against ``storage_size``). Only called where ``storage_size`` is not None."""
        raise NotImplementedError(f"the {self.name} engine makes no strided views")

    def join_views(self, arrays, axis):
        """One view over ``arrays`` (the shards of one array, cut along ``axis``) when they lie next
        to each other in one buffer, else None; the default never finds one (callers then copy)."""
        return None

    def recycle(self, arr):
        """Offer ``arr`` for reuse by ``empty_reused`` when the caller's local is its only reference;
        True if it was taken (the caller must not use ``arr`` again). The default keeps nothing."""
        return False

    def recycle_spare(self, arr):
        """``recycle`` for a gradient the backward walk has finished with (its local is the only
        reference), which the engine may keep for ``empty_reused``; the default keeps nothing."""
        return False

    def empty_reused(self, shape, dtype):
        """Like ``empty``, but may hand out a buffer ``recycle`` took (contents undefined)."""
        return self.empty(shape, dtype)

    def clear_pool(self):
        """Free every buffer ``recycle`` holds."""

    def add(self, a, b):
        """``a + b`` (broadcasting; either may be a Python number). An engine may put the result
        in memory it keeps (the numpy engine's block cache): the ops of the hot path (a residual
        sum, the loss) call these three instead of the operators."""
        return a + b

    def subtract(self, a, b):
        """``a - b``, as ``add``."""
        return a - b

    def multiply(self, a, b):
        """``a * b``, as ``add``."""
        return a * b

    def linear(self, x, weight, bias):
        """A Linear layer's forward, ``x @ weight.T + bias``: x (..., in), weight (out, in), bias
        (out,) or None -> (..., out), the leading axes flattened into one 2-D product. One engine
        call per layer (the layer runs on every step of every model: a Python call saved here is
        saved 26 times a forward); engines with a fused kernel (a gemm with beta=1) override it."""
        x2 = self.reshape(x, (-1, x.shape[-1]))
        out = self.matmul(x2, self.transpose(weight, (1, 0)))
        if bias is not None:
            out += bias
        return self.reshape(out, tuple(x.shape[:-1]) + (weight.shape[0],))

    def matmul_reused(self, a, b):
        """``a @ b`` for 2-D ``a`` and ``b``, possibly written into a recycled buffer (weight gradients)."""
        return self.matmul(a, b)

    def matmul_shaped(self, a, b, shape):
        """``a @ b`` for 2-D ``a`` and ``b``, reshaped to ``shape`` (an input's gradient, whose
        leading axes the product flattened), possibly in a recycled buffer that the backward walk
        hands back once its consumer has read it (``recycle_spare``)."""
        return self.reshape(self.matmul(a, b), shape)

    def add_scaled_(self, target, value, alpha):
        """``target += alpha * value`` in place (the SGD update); returns ``target``. The
        engines' fast versions may fuse the multiply and the add (one rounding, as torch's
        ``add_(value, alpha=)``), so results may differ from this default in the last bit."""
        target += value * alpha
        return target

    def add_scaled_foreach_(self, targets, values, alpha):
        """``add_scaled_`` for several pairs (two lists of arrays, each pair of one shape and dtype): plain gradient
        descent over a model's parameters in one call per optimizer step, so an engine with a multi-tensor
        kernel launches it once; this default takes them one by one."""
        for target, value in zip(targets, values):
            self.add_scaled_(target, value, alpha)

    def adam_step_(self, param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
                   decoupled, maximize=False, max_exp_avg_sq=None):
        """One Adam (``decoupled=False``) or AdamW step of one parameter, in place on ``param``,
        ``exp_avg`` and ``exp_avg_sq`` (same shape and dtype as ``grad``); ``step`` counts from 1.
        torch's arithmetic: ``m = beta1 m + (1 - beta1) g``, ``v = beta2 v + (1 - beta2) g^2``,
        ``param -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)`` with ``bc = 1 - beta ** step``.
        ``maximize``: ``g = -g`` first; ``max_exp_avg_sq`` (amsgrad's state, or None): it takes
        the running maximum of ``v``, and the division uses it instead of ``v``.
        This default is the optimizer's tensor arithmetic, operation for operation, on arrays
        (no tensor dispatch per operation); an engine with a fused kernel overrides it."""
        if maximize:
            grad = -grad
        if weight_decay != 0:
            if decoupled:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        exp_avg *= beta1
        self.add_scaled_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += grad * grad * (1 - beta2)
        if max_exp_avg_sq is not None:
            max_exp_avg_sq[...] = self.maximum(max_exp_avg_sq, exp_avg_sq)
            exp_avg_sq = max_exp_avg_sq
        denom = self.sqrt(exp_avg_sq)
        denom /= math.sqrt(1 - beta2 ** step)
        denom += eps
        param += exp_avg / denom * (-lr / (1 - beta1 ** step))
        return param

    def adam_steps_(self, params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay,
                    decoupled, maximize=False, max_exp_avg_sqs=None):
        """``adam_step_`` for several parameters at one ``step``: four lists of arrays, one entry per parameter
        (and a fifth, ``max_exp_avg_sqs``, with amsgrad). One call per optimizer step, so an engine with a
        multi-tensor kernel launches it once; this default takes them one by one."""
        maxes = [None] * len(params) if max_exp_avg_sqs is None else max_exp_avg_sqs
        for arrays, max_sq in zip(zip(params, grads, exp_avgs, exp_avg_sqs), maxes):
            self.adam_step_(*arrays, step, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, max_sq)

    def sgd_step_(self, param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
                  maximize):
        """One SGD step of one parameter, in place on ``param`` and ``momentum_buffer`` (same
        shape and dtype as ``grad``; None where ``momentum`` is 0; the caller makes its first
        value, the first step's gradient). torch's arithmetic: ``g = -g`` (maximize), ``g += wd p``,
        ``buf = momentum buf + (1 - dampening) g``, ``g = g + momentum buf`` (Nesterov) or ``buf``,
        ``param -= lr g``. This default is gt/optim/sgd.py's tensor arithmetic, operation for
        operation (``add_`` of alpha 1 a plain addition, else ``add_scaled_``)."""
        if maximize:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * param
        if momentum_buffer is not None:
            momentum_buffer *= momentum
            _add_in_place(self, momentum_buffer, grad, 1 - dampening)
            grad = grad + momentum * momentum_buffer if nesterov else momentum_buffer
        _add_in_place(self, param, grad, -lr)
        return param

    def norm2(self, x, axis):
        """The 2-norm ``sqrt(sum(x * x))`` of real ``x`` over ``axis`` (a tuple, or None: all), the axes kept."""
        return self.sqrt(self.sum(x * x, axis=axis, keepdims=True))

    def layer_norm_fused(self, x, weight, bias, n_axes, eps):
        """``(out, state)`` of layer norm over the last ``n_axes`` axes of ``x`` (``weight`` and ``bias`` of those
        axes' shape, or None) in one kernel, or None where the engine has none (the op then composes it)."""
        return None

    def layer_norm_fused_backward(self, grad, weight, bias, state, n_axes, needs):
        """``(grad x, grad weight, grad bias)``, None where ``needs`` (three bools) says not needed;
        ``state``: what ``layer_norm_fused`` kept (x is not passed again)."""
        raise NotImplementedError(f"the {self.name} engine has no fused layer norm")

    def attention_fused(self, q, k, v, scale, causal):
        """``(out, state)`` of ``softmax(q @ k^T * scale) @ v`` on heads (B, H, L, E), (B, H, S, E), (B, H, S, E),
        key j blocked for query i > j when ``causal``, in one kernel; or None (the op then composes it)."""
        return None

    def attention_fused_backward(self, grad, q, k, v, state, scale, causal, packed=False, split_ok=False):
        """``(grad q, grad k, grad v)`` of ``attention_fused``. ``packed``: q, k and v are (B, H, L, E) views of
        one (B, L, 3, H, E) array (self-attention from one packed product), and the answer is that array's
        gradient, one (B, L, 3 * H * E) array; or, with ``split_ok``, the three apart where packing is a copy."""
        raise NotImplementedError(f"the {self.name} engine has no fused attention")

    def encoder_layer_fused(self, x, num_heads, qkv_weights, qkv_biases, out_weight, out_bias, ln1_weight,
                            ln1_bias, ln2_weight, ln2_bias, fc1_weight, fc1_bias, fc2_weight, fc2_bias, eps,
                            gelu):
        """A pre-norm transformer encoder layer for inference in one kernel, or None where the
        engine has none (the caller then runs its ops): x (B, T, D) -> ``h = x + attn(ln1(x))``,
        then ``h + fc2(act(fc1(ln2(h))))``; self-attention of ``num_heads`` heads without a mask
        whose q, k and v projections have the weights ``qkv_weights`` (three (D, D)) and biases
        ``qkv_biases`` (three (D,)), ReLU (exact GELU when ``gelu``), both norms with ``eps``.
        No gradient: only for a forward that records nothing."""
        return None

    # ---- sliding windows: convolution and pooling (gt/ops/conv.py) ------------------------------
    def windows(self, x, kernel, stride, dilation):
        """The sliding windows over the last ``len(kernel)`` axes of ``x`` (..., *size): an array
        (..., *out, *kernel) whose element [..., o, k] is ``x[..., o * stride + k * dilation]``
        along each of those axes, ``out = (size - dilation * (kernel - 1) - 1) // stride + 1``
        (``kernel``, ``stride``, ``dilation``: tuples of positive ints, one per axis, and each
        window inside ``x``). Read-only; a view where the engine can make one (numpy's and
        torch's strides); this default stacks one strided slice per kernel offset (a copy)."""
        lead = x.ndim - len(kernel)
        out = _window_counts(tuple(x.shape[lead:]), kernel, stride, dilation)
        pieces = [self.getitem(x, _window_slice(lead, offset, out, stride, dilation))
                  for offset in itertools.product(*(range(k) for k in kernel))]
        stacked = self.stack(pieces, x.ndim)                          # (..., *out, prod(kernel))
        return self.reshape(stacked, tuple(x.shape[:lead]) + out + tuple(kernel))

    def fold_windows(self, cols, size, stride, dilation):
        """The adjoint of ``windows``: ``cols`` (..., *out, *kernel) added back into a new array
        (..., *size) of zeros, each value where ``windows`` read it (overlaps add up): the
        gradient of the windows' input. One strided scatter-add per kernel offset."""
        nd = len(size)
        kernel, out = tuple(cols.shape[cols.ndim - nd:]), tuple(cols.shape[cols.ndim - 2 * nd:cols.ndim - nd])
        lead = cols.ndim - 2 * nd
        target = self.zeros(tuple(cols.shape[:lead]) + tuple(size), self.dtype_of(cols))
        for offset in itertools.product(*(range(k) for k in kernel)):
            part = self.getitem(cols, (Ellipsis,) + offset)           # (..., *out)
            self.index_add(target, _window_slice(lead, offset, out, stride, dilation), part)
        return target

    def conv_fused(self, x, weight, bias, stride, padding, dilation, groups):
        """A convolution's output in one engine kernel, or None where the engine has none (the
        op then composes it from ``windows`` and ``matmul``): x (N, C, *size), weight
        (O, C / groups, *kernel), bias (O,) or None, ``stride``, ``dilation`` and ``padding``
        (zeros on both sides, the same amount) one int per spatial axis -> (N, O, *out)."""
        return None

    def conv_fused_backward(self, grad, x, weight, stride, padding, dilation, groups, needs):
        """``(grad x, grad weight, grad bias)`` of ``conv_fused``, None where ``needs`` (three
        bools) says not needed."""
        raise NotImplementedError(f"the {self.name} engine has no fused convolution")

    def max_pool_fused(self, x, kernel, stride, padding, dilation, ceil_mode):
        """``(out, state)`` of a max pooling over the last ``len(kernel)`` axes of x (..., *size)
        in one kernel (``padding`` one int per axis on both sides, ``ceil_mode`` as torch's), or
        None where the engine has none (the op then composes it from ``windows``)."""
        return None

    def max_pool_fused_backward(self, grad, x, state, kernel, stride, padding, dilation, ceil_mode):
        """The gradient of x of ``max_pool_fused`` (``state`` is what it returned)."""
        raise NotImplementedError(f"the {self.name} engine has no fused max pooling")

    def exp_(self, x):
        """``exp(x)``, possibly written over ``x`` (a fresh array of the caller's)."""
        return self.exp(x)

    def masked_fill_(self, x, mask, value):
        """``where(mask, value, x)``: ``value`` (a Python number) wherever the bool array ``mask``
        (broadcast to ``x``'s shape) holds, possibly written over ``x`` (a fresh float array of
        the caller's); the engines write in place, with no second array as large as ``x``."""
        return self.where(mask, value, x)

    def addmm_(self, target, a, b, alpha):
        """``target += alpha * (a @ b)`` in place for 2-D arrays (SGD fused into the backward)."""
        return self.add_scaled_(target, self.matmul(a, b), alpha)

    # ---- version counters (gt/autograd/versions.py) ------------------------------------------
    # Each memory owner counts its in-place changes and remembers the generation (a count of all
    # changes, anywhere) of its latest one. ``Function.save`` keeps only the generation: one int,
    # whatever it saves; the backward compares it with the generation now, and looks at the
    # arrays one by one only when something changed in between (in a training loop, never).
    counts_inplace_ops = False
    """Whether the library's own in-place ops count themselves (torch's do): gt then bumps a
    version only where it writes without one (an optimizer's fused kernel)."""

    def memory_owner(self, arr):
        """The object whose version counts the changes of ``arr``'s memory: views of one array
        share it (torch's rule: a change through a view is a change of the array). The default
        counts each array on its own."""
        return arr

    def is_view_of(self, arr, of):
        """True when ``arr`` lies in ``of``'s memory (a view of it, or of what it views): asked
        after each unrecorded view op (gt/autograd/function.py's ``note_view``), so engines answer
        it faster than by comparing ``memory_owner``s. numpy's answer (the torch engine has its
        own): a view's ``base`` is the array owning the memory, or the view's own base where that
        is no ndarray (as_strided); an index array's result points elsewhere or nowhere."""
        base = arr.base
        return base is not None and (base is of or base is of.base)

    def memory_overlap(self, a, b):
        """How torch sees array ``b`` (read) against ``a`` (written) before an op writes ``a``:
        ``"full"`` (one layout of the same memory), ``"partial"`` (their memory ranges meet
        otherwise), or None: apart, or a layout with gaps or repeats on either side, where torch
        does not tell (its ``get_overlap_status``: only layouts that are dense in some order of
        their axes are compared)."""
        if a is b:
            return "full"
        if not self.may_share(a, b):
            return None           # the common case, two arrays that own their memory: one cheap question
        n, m = self.numel(a), self.numel(b)
        sa, sb = self.element_strides(a), self.element_strides(b)
        if not (n and m and _dense(a.shape, sa) and _dense(b.shape, sb)):
            return None
        a0, b0 = self.data_address(a), self.data_address(b)
        a1, b1 = a0 + n * a.itemsize, b0 + m * b.itemsize
        if (a0, a1) == (b0, b1):
            return "full" if sa == sb else "partial"
        return "partial" if a0 < b1 and b0 < a1 else None

    def untracked_alias(self, arr):
        """A view of all of ``arr``'s memory whose in-place changes count apart from ``arr``'s
        (``Tensor.data``: torch hides changes made through it from the saved-value checks)."""
        return arr

    def version_of(self, arr):
        """How many times ``arr``'s memory was changed in place through gt (``bump_version``)."""
        entry = self._version_entry(arr)
        return 0 if entry is None else entry[1]

    def versions_of(self, values):
        """A token of the versions of the arrays among ``values`` now, for ``changed_since``."""
        return self._generation

    def changed_since(self, values, token):
        """The first array among ``values`` changed in place since ``versions_of`` gave ``token``,
        as ``(index, version now, version then or None where unknown)``; None if there is none."""
        if token == self._generation:
            return None
        for i, value in enumerate(values):
            if self.is_array(value):
                entry = self._version_entry(value)
                if entry is not None and entry[2] > token:
                    return i, entry[1], None
        return None

    def bump_version(self, arr):
        """Count one in-place change of ``arr``'s memory (every view of it sees the new version)."""
        owner = self.memory_owner(arr)
        key = id(owner)
        counts = self._versions
        entry = counts.get(key)
        if entry is None:
            # forgotten when its array is freed (the weak reference's callback runs then, before
            # another object can take the id), so an entry found by id is always its owner's
            entry = counts[key] = [weakref.ref(owner, functools.partial(_forget, counts, key)), 0, 0]
        self._generation += 1
        entry[1] += 1
        entry[2] = self._generation

    def bump_versions(self, arrays):
        """``bump_version`` of each of ``arrays`` (an optimizer's parameters, one call a step)."""
        for arr in arrays:
            self.bump_version(arr)

    def _version_entry(self, arr):
        """``[weak reference to the owner, changes, generation of the latest]`` or None."""
        return self._versions.get(id(self.memory_owner(arr)))

    @property
    def _versions(self):
        counts = self.__dict__.get("_version_counts")
        if counts is None:
            counts = self.__dict__["_version_counts"] = {}
        return counts

    _generation = 0

    def get_num_threads(self):
        """How many threads the engine's math library uses now (gt/backend/threads.py)."""
        return 1

    def set_num_threads(self, n):
        """Fix the library's thread count at ``n`` (an int >= 1), or ``"auto"``: follow the load."""


def _window_counts(size, kernel, stride, dilation):
    """How many windows fit along each axis (``windows``'s ``out``)."""
    return tuple((n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(size, kernel, stride, dilation))


def _window_slice(lead, offset, out, stride, dilation):
    """The index of the elements every window reads at kernel ``offset``: one strided slice per
    windowed axis, after ``lead`` whole axes."""
    return (slice(None),) * lead + tuple(slice(k * d, k * d + s * (n - 1) + 1, s)
                                         for k, n, s, d in zip(offset, out, stride, dilation))


def _add_in_place(engine, target, value, alpha):
    """Tensor.add_'s two ways: a plain addition for alpha 1, else the engine's scaled one."""
    if alpha == 1:
        target += value
    else:
        engine.add_scaled_(target, value, alpha)


def _forget(counts, key, ref):
    if counts.get(key, (None,))[0] is ref:
        del counts[key]


def _dense(shape, strides):
    """Whether a layout covers a range of memory without gaps or repeats, its axes in some order
    (torch's ``is_non_overlapping_and_dense``; axes of one element do not count)."""
    step = 1
    for stride, n in sorted((s, n) for n, s in zip(shape, strides) if n != 1):
        if stride != step:
            return False
        step *= n
    return True
