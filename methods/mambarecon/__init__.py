"""MambaRecon: unrolled SS2D (2-D selective-scan) cascades with hard multi-coil data consistency; ``selective_scan``
(CUDA kernel or pure PyTorch, shared with MDPG), ``ss2d``, ``model``, ``config``, ``adapter``."""
