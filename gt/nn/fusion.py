"""torch.nn.utils.fusion's path (``gt.nn.utils.fusion.fuse_conv_bn_eval``): the fusions of a
convolution or a Linear layer with the batch norm after it, from utils_extra.py."""

from gt.nn.utils_extra import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights"]
