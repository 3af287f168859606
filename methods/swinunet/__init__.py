"""Swin-Unet (Cao et al. 2022) on the zero-filled complex image, built from ``timm``'s Swin blocks."""
