"""DiffuseRecon (Peng et al. 2022): an unconditional ε-prediction diffusion prior on complex images, sampled with
k-space guidance and refined with hard data consistency; ``config``, ``prior`` (the ``diffusers`` UNet and
schedule), ``sampler``, ``adapter``."""
