"""fastMRI's U-Net baseline (``fastmri.models.Unet``) on the zero-filled coil-combined image."""
