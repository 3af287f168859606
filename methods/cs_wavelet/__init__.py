"""L1-wavelet compressed sensing (sigpy): the classical reference the paper does not include."""
