"""``nn.AdaptiveLogSoftmaxWithLoss``: torch's efficient softmax approximation for large vocabularies
(Grave et al., "Efficient softmax approximation for GPUs"), with torch's parameters, state dict
keys, outputs and gradients.

The classes are split by ``cutoffs`` into a shortlist, scored by the ``head`` together with one
logit per tail cluster, and the tail clusters, each scored by a low-rank projection of its own
(``tail[i]``: in_features -> in_features // div_value ** (i + 1) -> cluster size). A class's
log-probability is its head log-probability (shortlist) or its cluster's head log-probability
plus its log-probability within the cluster.
"""

import collections

from gt import dtypes
from gt.nn.containers import ModuleList, Sequential
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.linear import Linear
from gt.nn.module import Module
from gt.tensor import cat, where

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = collections.namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """Adaptive log-softmax over ``n_classes`` classes split at ``cutoffs`` (torch's).

    ``forward(input, target)``: input (N, in_features) and target (N,) class indices, or (in_features,)
    and a 0-d target; returns ``(output, loss)``: ``output`` (N,) (or 0-d) the log-probability of
    each target, ``loss`` the mean negative log-likelihood (0-d). ``log_prob(input)`` (N, n_classes):
    every class's log-probability; ``predict(input)`` (N,): the most likely class.

    Parameters: ``head`` Linear(in_features, cutoffs[0] + len(cutoffs), bias=head_bias) and ``tail``,
    a ModuleList of Sequential(Linear(in_features, hsz, bias=False), Linear(hsz, osz, bias=False)),
    so a torch state dict loads as is. ``device`` is accepted for torch's signature and not used.

        >>> m = nn.AdaptiveLogSoftmaxWithLoss(16, 10, cutoffs=[4, 8])
        >>> out, loss = m(gt.randn(5, 16), gt.tensor([0, 3, 5, 9, 7]))
        >>> out.shape, loss.shape
        ((5,), ())
    """

    def __init__(self, in_features, n_classes, cutoffs, div_value=4.0, head_bias=False, device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError("cutoffs should be a sequence of unique, positive integers sorted in an increasing "
                             f"order, where each value is between 1 and n_classes-1 (n_classes={n_classes}), "
                             f"got {cutoffs}")
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, dtype=dtype)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, dtype=dtype),
                                        Linear(hsz, osz, bias=False, dtype=dtype)))

    def reset_parameters(self):
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_, target_):
        input_ = _tensor(input_, "AdaptiveLogSoftmaxWithLoss")
        target_ = _tensor(target_, "AdaptiveLogSoftmaxWithLoss", "target")
        if target_.ndim == 1:
            if input_.ndim == 0 or input_.shape[0] != target_.shape[0]:
                raise RuntimeError("Input and target should have the same size in the batch dimension "
                                   f"(input {input_.shape}, target {target_.shape}).")
            if input_.ndim != 2:
                raise RuntimeError(f"1D target tensor expects 2D input tensors, but found inputs with size "
                                   f"{input_.shape}")
        elif target_.ndim == 0:
            if input_.ndim != 1:
                raise RuntimeError(f"0D target tensor expects 1D input tensors, but found inputs with size "
                                   f"{input_.shape}")
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if target_.dtype.is_floating_point or target_.dtype == dtypes.bool_:
            raise RuntimeError(f"AdaptiveLogSoftmaxWithLoss: target must hold integer class indices, got "
                               f"{target_.dtype}")
        batched = target_.ndim > 0
        input = input_ if batched else input_.unsqueeze(0)
        target = (target_ if batched else target_.unsqueeze(0)).long()
        if target.shape[0] and bool(((target < 0) | (target >= self.n_classes)).any()):
            raise RuntimeError(f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                               f"[{int(target.min().item())}, {int(target.max().item())}] were found. ")

        # cluster of each row: 0 for the shortlist, i for the tail's cluster i - 1
        cluster = (target >= self.cutoffs[0]).long()
        for cut in self.cutoffs[1:-1]:
            cluster = cluster + (target >= cut).long()
        output = None
        for i in range(1, self.n_clusters + 1):
            rows = (cluster == i).nonzero()[:, 0]
            if rows.shape[0] == 0:
                continue
            cluster_logprob = self.tail[i - 1](input[rows]).log_softmax(1)
            local = cluster_logprob.gather(1, (target[rows] - self.cutoffs[i - 1]).unsqueeze(1)).squeeze(1)
            output = (input.new_zeros(target.shape[0]) if output is None else output).index_copy(0, rows, local)
        head_index = where(cluster == 0, target, cluster + (self.shortlist_size - 1))
        head_logprob = self.head(input).log_softmax(1)
        picked = head_logprob.gather(1, head_index.unsqueeze(1)).squeeze(1)
        output = picked if output is None else output + picked
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _get_full_log_prob(self, input, head_output):
        head_logprob = head_output.log_softmax(1)
        parts = [head_logprob[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster_logprob = self.tail[i](input).log_softmax(1)
            parts.append(cluster_logprob + head_logprob[:, self.shortlist_size + i].unsqueeze(1))
        return cat(parts, 1)

    def _batch(self, input, what):
        input = _tensor(input, f"AdaptiveLogSoftmaxWithLoss.{what}")
        if input.ndim != 2:
            raise IndexError(f"AdaptiveLogSoftmaxWithLoss.{what}: expected a 2-D input (N, in_features), got "
                             f"shape {input.shape}")
        return input

    def log_prob(self, input):
        """Every class's log-probability: (N, in_features) -> (N, n_classes)."""
        input = self._batch(input, "log_prob")
        return self._get_full_log_prob(input, self.head(input))

    def predict(self, input):
        """The most likely class of each row: (N, in_features) -> (N,) int64; the tail clusters are
        scored only when some row's best head entry is a cluster."""
        input = self._batch(input, "predict")
        head_output = self.head(input)
        output = head_output.argmax(1)
        not_in_shortlist = output >= self.shortlist_size
        if not bool(not_in_shortlist.any()):
            return output
        if bool(not_in_shortlist.all()):
            return self._get_full_log_prob(input, head_output).argmax(1)
        rows = not_in_shortlist.nonzero()[:, 0]
        best = self._get_full_log_prob(input[rows], head_output[rows]).argmax(1)
        return output.index_copy(0, rows, best)

