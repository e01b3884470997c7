"""Neural-network layers with PyTorch's conventions: ``Module``, ``Parameter``, layers,
containers, ``functional`` (as ``F``) and ``init``.

    >>> from gt import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> loss = nn.functional.cross_entropy(model(gt.randn(5, 4)), [0, 1, 1, 0, 1])
    >>> loss.backward()
"""

from gt.nn import functional, init
from gt.nn.activation import ELU, GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh
from gt.nn.activation_extra import (CELU, GLU, SELU, Hardshrink, Hardsigmoid, Hardswish, Hardtanh,  # noqa: F401
                                    LogSigmoid, Mish, PReLU, ReLU6, RReLU, Softmin, Softshrink, Softsign, Tanhshrink,
                                    Threshold)
from gt.nn.attention import MultiHeadAttention
from gt.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from gt.nn.conv import Conv1d, Conv2d, Conv3d
from gt.nn.conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from gt.nn.containers import Container, ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential  # noqa: F401
from gt.nn.dropout import Dropout
from gt.nn.dropout_extra import AlphaDropout, Dropout1d, Dropout2d, Dropout3d  # noqa: F401
from gt.nn.embedding import Embedding
from gt.nn.extra_functions2 import Bilinear, CTCLoss, EmbeddingBag, LPPool1d, LPPool2d, LPPool3d  # noqa: F401
from gt.nn.fractional_pool import FractionalMaxPool2d, FractionalMaxPool3d  # noqa: F401
from gt.nn.kv_cache import KVCache
from gt.nn.lazy import LazyLinear  # noqa: F401
from gt.nn.lazy_conv_norm import (LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, LazyConv1d,  # noqa: F401
                                  LazyConv2d, LazyConv3d, LazyConvTranspose1d, LazyConvTranspose2d,
                                  LazyConvTranspose3d, LazyInstanceNorm1d, LazyInstanceNorm2d, LazyInstanceNorm3d)
from gt.nn.uninitialized import UninitializedBuffer, UninitializedParameter  # noqa: F401
from gt.nn.linear import Flatten, Identity, Linear, Unflatten
from gt.nn.linear_cross_entropy import LinearCrossEntropyOptions  # noqa: F401
from gt.nn.linear_cross_entropy_loss import LinearCrossEntropyLoss  # noqa: F401
from gt.nn.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss, NLLLoss2d
from gt.nn.losses_extra import (CosineEmbeddingLoss, CosineSimilarity, GaussianNLLLoss, HingeEmbeddingLoss,  # noqa: F401
                                HuberLoss, KLDivLoss, MarginRankingLoss, MultiLabelSoftMarginLoss, MultiMarginLoss,
                                PairwiseDistance, PoissonNLLLoss, SmoothL1Loss, SoftMarginLoss, TripletMarginLoss)
from gt.nn.module import IncompatibleKeys, Module
from gt.nn import parallel
from gt.nn.parallel import DataParallel  # noqa: F401
from gt.nn.multihead_attention import MultiheadAttention
from gt.nn.padding import (CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d, ConstantPad2d,  # noqa: F401
                           ConstantPad3d, ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d,
                           ReplicationPad2d, ReplicationPad3d, ZeroPad1d, ZeroPad2d, ZeroPad3d)
from gt.nn.normalization import LayerNorm
from gt.nn.norms import (GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d,  # noqa: F401
                         LocalResponseNorm, RMSNorm)
from gt.nn.parameter import Parameter
from gt.nn.pooling_extra import (AdaptiveAvgPool3d, AdaptiveMaxPool1d, AdaptiveMaxPool2d,  # noqa: F401
                               AdaptiveMaxPool3d, AvgPool3d, MaxPool3d, MaxUnpool1d, MaxUnpool2d, MaxUnpool3d)
from gt.nn.recurrent import GRU, LSTM, RNN, RNNBase  # noqa: F401
from gt.nn.rnn_cells import GRUCell, LSTMCell, RNNCell, RNNCellBase  # noqa: F401
from gt.nn.pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d,
                              MaxPool2d)
from gt.nn.transformer import FeedForward, TransformerBlock
from gt.nn.transformer_torch import (Transformer, TransformerDecoder, TransformerDecoderLayer,  # noqa: F401
                                      TransformerEncoder, TransformerEncoderLayer)
from gt.nn.upsampling import (Fold, PixelShuffle, PixelUnshuffle, Unfold, Upsample,  # noqa: F401
                             UpsamplingBilinear2d, UpsamplingNearest2d)

from gt.nn.adaptive_softmax import AdaptiveLogSoftmaxWithLoss  # noqa: E402,F401
from gt.nn.small_modules import (Buffer, ChannelShuffle, FeatureAlphaDropout, MultiLabelMarginLoss,  # noqa: E402,F401
                                 Softmax2d, SyncBatchNorm, TripletMarginWithDistanceLoss)

# Module-level functions, as in the public gt (nn.relu(x), nn.mse_loss(a, b), ...)
from gt.nn.functional import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: E402
                              cross_entropy, gelu, log_softmax, mse_loss, relu, sigmoid, softmax, tanh)

from gt.nn import utils  # noqa: E402  (clip_grad_norm_)
from gt.nn import modules  # noqa: E402,F401  (torch's path: gt.nn.modules.module.register_module_forward_hook)
from gt.nn import sampling  # noqa: E402  (greedy, temperature, top-k, top-p, repetition penalty, sample)
from gt.optim.sgd import SGD  # noqa: E402  (from gt.nn import SGD, as in the public gt)
