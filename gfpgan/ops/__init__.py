"""Low-level operators (upfirdn2d, fused bias + leaky ReLU, roi_align) in pure PyTorch."""
