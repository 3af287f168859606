"""MDPG (Zhang et al. 2025): a latent diffusion prior (stage I: ``autoencoder``, then ``prior``) guiding an unrolled
VMamba U-Net with hard data consistency (stage II: ``unrolled``, the registered method); ``config``, ``prior``,
``unrolled``, ``adapter``."""
