"""The torch engine's fused kernels: one call where the ops layer would run several.

torch ships fused CPU kernels for the pieces of a transformer step: Adam/AdamW's update
(``torch.optim``'s ``fused=True``), layer norm (what ``nn.LayerNorm`` runs) and flash attention
(what ``F.scaled_dot_product_attention`` runs on the CPU). Each reads and writes its arrays once
instead of once per composed op, and runs in one call instead of a Python call per op: on the
benchmarks' small decoder (benchmarks/small_decoder.py) the fused layer norm and attention took
a step from 100 ms to 86 ms on a 2-core Xeon. Off the CPU (CUDA), attention is torch's
``F.scaled_dot_product_attention`` with its gradient from torch's autograd for that one op
(``_attention_by_autograd``), so a GPU runs torch's fused attention kernels too. A mixin of
``TorchEngine``; each method answers None (or defers to the engine's default) where its kernel
does not apply, and the ops layer then composes the op.
Values agree with the composed ops to float rounding (the kernels sum in another order).
"""

import torch

from gt.backend import torch_quantized

_linear = torch.nn.functional.linear
_sdpa = torch.nn.functional.scaled_dot_product_attention
_encoder_layer = getattr(torch, "_transformer_encoder_layer_fwd", None)   # a private op: absent, the ops run


def _floating(*arrays):
    """Whether every array is float32 (or every one float64) on one device: what the fused
    kernels take. A loop, not a generator: it runs at every layer norm and attention."""
    first = arrays[0]
    dtype, device = first.dtype, first.device
    if dtype is not torch.float32 and dtype is not torch.float64:
        return False
    for a in arrays:
        if a.dtype is not dtype or a.device != device:
            return False
    return True


def _unit_last_stride(*arrays):
    """The arrays, each copied where its last axis is strided (a transposed view, ``F.scaled_dot_product_attention``
    of ``x.transpose(-1, -2)``): torch's CPU flash-attention op, called directly, reads the last axis as if its
    stride were 1 and gives wrong values otherwise (torch's public function never hands it such a view). A stride
    check a call."""
    return tuple(a if a.stride(-1) == 1 else a.contiguous() for a in arrays)


def _adam_kernel_takes(arrays):
    """Whether torch's fused Adam kernel can update (param, grad, exp_avg, exp_avg_sq): floats of
    one dtype on one CPU or CUDA device, all contiguous (the kernel pairs elements by memory order)."""
    first = arrays[0]       # the flags, not ``device.type``: that builds a device object (0.5 us)
    return (_floating(*arrays) and (first.is_cpu or first.is_cuda)
            and all(a.is_contiguous() for a in arrays))


def _fused_adam(members, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """torch.optim's fused Adam/AdamW kernel on ``members`` ((param, grad, exp_avg, exp_avg_sq)
    tuples of one dtype and device) at ``step``: the values of torch.optim.Adam/AdamW bit for bit."""
    fused = torch._fused_adamw_ if decoupled else torch._fused_adam_
    lists = [list(a) for a in zip(*members)]
    # the kernel only reads the step count: one tensor serves every parameter
    steps = [torch.tensor(float(step), device=members[0][0].device)] * len(members)
    fused(*lists, [], steps, lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay, eps=eps,
          amsgrad=False, maximize=False)


def _attention_by_autograd(q, k, v, scale, causal):
    """Attention off the CPU (CUDA): ``F.scaled_dot_product_attention``, which picks the device's
    fused kernel (memory-efficient or flash attention on CUDA, the composed arithmetic where none
    applies), with its gradient from torch's autograd for this one op, since the CUDA kernels'
    backward ops take arguments (random-state offsets, sequence bounds) that only their forward
    makes. The state is the output and the detached inputs it was computed from. None (the ops
    layer composes the op) for inference tensors, of which torch makes no graph. Host work, the
    path forced onto the CPU at (2, 4, 4, 4), one thread, three runs: 158-194 us a forward and
    backward against 316-383 composed (and 146-181 with the CPU kernel called as below)."""
    if torch.is_inference_mode_enabled() or q.is_inference() or k.is_inference() or v.is_inference():
        return None
    with torch.enable_grad():
        leaves = tuple(t.detach().requires_grad_() for t in (q, k, v))
        out = _sdpa(*leaves, is_causal=causal, scale=scale)
    return out.detach(), (out, leaves)


def _attention_grads(out, leaves, grad):
    """The gradients of q, k and v from ``_attention_by_autograd``'s graph. Where torch ran one
    fused kernel, whose backward node takes q, k and v themselves (its next functions are their
    accumulators, in that order), the node is called directly: the gradients the engine's walk
    would give, without the walk (on the CPU 19 against 60 us a call). Otherwise (torch composed
    it, or the node will not be called so) torch's autograd walks the graph. The graph is kept
    either way (gt's backward(retain_graph=True) may come back to it); it goes with the op."""
    node = out.grad_fn
    nexts = node.next_functions
    if len(nexts) >= 3 and all(getattr(fn, "variable", None) is leaf for (fn, _), leaf in zip(nexts, leaves)):
        try:
            with torch.no_grad():   # the gradients as plain arrays (under grad mode they would carry a graph)
                return tuple(node(grad)[:3])
        except RuntimeError:    # a kernel whose node wants other arguments: the engine's walk
            pass
    return torch.autograd.grad(out, leaves, grad, retain_graph=True)


class TorchKernels:
    def swap_last(self, x):
        return x.mT      # half of permute's time (a tuple of axes is parsed per call)

    def adam_step_(self, param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
                   decoupled, maximize=False, max_exp_avg_sq=None):
        # maximize and amsgrad take the array arithmetic: gt's values for them (the tensor
        # code's, before they came here) stay as they were
        arrays = (param, grad, exp_avg, exp_avg_sq)
        if maximize or max_exp_avg_sq is not None or not _adam_kernel_takes(arrays):
            return super().adam_step_(*arrays, step, lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
                                      max_exp_avg_sq)
        _fused_adam([arrays], step, lr, beta1, beta2, eps, weight_decay, decoupled)
        return param

    def adam_steps_(self, params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps, weight_decay,
                    decoupled, maximize=False, max_exp_avg_sqs=None):
        # one launch of the fused kernel for every parameter of one dtype and device, as
        # torch.optim's fused=True (the same values as one launch each)
        if maximize or max_exp_avg_sqs is not None:
            return super().adam_steps_(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps,
                                       weight_decay, decoupled, maximize, max_exp_avg_sqs)
        groups = {}
        for arrays in zip(params, grads, exp_avgs, exp_avg_sqs):
            if _adam_kernel_takes(arrays):
                groups.setdefault((arrays[0].dtype, arrays[0].device), []).append(arrays)
            else:
                super().adam_step_(*arrays, step, lr, beta1, beta2, eps, weight_decay, decoupled)
        for members in groups.values():
            _fused_adam(members, step, lr, beta1, beta2, eps, weight_decay, decoupled)

    def quantized_linear_packed(self, x, weight, weight_scale, bias):
        return torch_quantized.linear_dynamic(x, weight, weight_scale, bias)

    def linear(self, x, weight, bias):
        # F.linear: on a contiguous input (and any 2-D one) aten flattens the leading axes and
        # runs one addmm with the bias as the gemm's C (beta=1, no second pass over the output),
        # as written out below: one call instead of reshape, transpose, addmm and view
        if (x.dtype != weight.dtype or not x.is_floating_point()
                or (bias is not None and bias.dtype != x.dtype)):
            return super().linear(x, weight, bias)
        self._threads.tick()   # the thread policy looks at the machine's load before a product
        if x.dim() <= 2 or x.is_contiguous():
            return _linear(x, weight, bias)
        # a strided N-d input, where F.linear would run matmul then add_ (other bits): the same
        # addmm on its rows, copied
        x2 = x.reshape(-1, x.shape[-1])
        out = torch.mm(x2, weight.t()) if bias is None else torch.addmm(bias, x2, weight.t())
        return out.view(x.shape[:-1] + (weight.shape[0],))

    def layer_norm_fused(self, x, weight, bias, n_axes, eps):
        shape = x.shape[x.ndim - n_axes:]
        given = [t for t in (weight, bias) if t is not None]
        if not _floating(x, *given) or x.numel() == 0:
            return None
        for t in given:
            if t.shape != shape:
                return None
        out, mean, rstd = torch.native_layer_norm(x, shape, weight, bias, eps)
        return out, (x, mean, rstd)

    def layer_norm_fused_backward(self, grad, weight, bias, state, n_axes, needs):
        x, mean, rstd = state
        shape = tuple(x.shape[x.ndim - n_axes:])
        return torch.ops.aten.native_layer_norm_backward(grad, x, shape, mean, rstd, weight, bias, list(needs))

    def attention_fused(self, q, k, v, scale, causal):
        # 4-D heads (B, H, L, E) with the same batch and heads and one head size
        if (q.ndim != 4 or k.ndim != 4 or v.ndim != 4 or not _floating(q, k, v)
                or tuple(q.shape[:2]) != tuple(k.shape[:2]) or tuple(k.shape[:3]) != tuple(v.shape[:3])
                or not q.shape[3] == k.shape[3] == v.shape[3] or 0 in q.shape or 0 in k.shape):
            return None
        if not q.is_cpu:
            return _attention_by_autograd(q, k, v, scale, causal)
        q, k, v = _unit_last_stride(q, k, v)
        out, logsumexp = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, causal, attn_mask=None, scale=scale)
        return out, (out, logsumexp)

    def attention_fused_backward(self, grad, q, k, v, state, scale, causal, packed=False, split_ok=False):
        out, saved = state
        if type(saved) is tuple:       # the op's own autograd graph (_attention_by_autograd)
            grads = _attention_grads(out, saved, grad)
        else:
            grad, q, k, v = _unit_last_stride(grad, q, k, v)
            grads = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
                grad, q, k, v, out, saved, 0.0, causal, attn_mask=None, scale=scale)
        if not packed or (split_ok and self.device == "cpu" and q.is_cpu):
            # apart: stacking them (0.58 ms a layer of benchmarks/small_decoder.py) costs more than
            # the three narrower products of the caller take over one (gt/ops/self_attention.py)
            return grads
        b, h, n, e = q.shape
        heads = [g.transpose(1, 2) for g in grads]
        if self.device != "cpu" or not q.is_cpu:
            return torch.stack(heads, 2).reshape(b, n, -1)
        # into a parked buffer, which the backward walk parks again once the q/k/v product's
        # backward has read it (recycle_spare): a fresh one, each layer, page-faults when glibc
        # has given the top of its heap back to the kernel
        out = self.empty_reused((b, n, 3 * h * e), grads[0].dtype)
        torch.stack(heads, 2, out=out.view(b, n, 3, h, e))
        return out

    def encoder_layer_fused(self, x, num_heads, qkv_weights, qkv_biases, out_weight, out_bias, ln1_weight,
                            ln1_bias, ln2_weight, ln2_bias, fc1_weight, fc1_bias, fc2_weight, fc2_bias, eps,
                            gelu):
        # torch's native encoder layer (what nn.TransformerEncoderLayer runs in eval mode): one
        # C++ call for the dozen ops of a block, on the CPU (the one device it is tested on here)
        rest = (out_weight, out_bias, ln1_weight, ln1_bias, ln2_weight, ln2_bias, fc1_weight, fc1_bias, fc2_weight,
                fc2_bias)
        if (_encoder_layer is None or x.device.type != "cpu" or x.ndim != 3 or x.numel() == 0
                or not _floating(x, *qkv_weights, *qkv_biases, *rest)):
            return None
        with torch.no_grad():
            # the q, k and v weights stacked, as the kernel takes them: a copy of 3 x (D, D) a call
            return _encoder_layer(x, x.shape[2], num_heads, torch.cat(qkv_weights), torch.cat(qkv_biases), out_weight,
                                  out_bias, gelu, True, eps, ln1_weight, ln1_bias, ln2_weight, ln2_bias, fc1_weight,
                                  fc1_bias, fc2_weight, fc2_bias, None, None)
