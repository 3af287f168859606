"""Zero-filled reconstruction: the adjoint of the undersampled multi-coil operator."""
