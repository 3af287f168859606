"""NASP: next-acceleration-scale prediction (the paper's method), split by concern: ``blocks`` and
``tokenizer`` (AQ-VAE), ``quantizer`` (codebook, Φ, fusion), ``levels`` (the six acquisition levels),
``discriminator`` (perceptual and adversarial terms), ``transformer`` and ``model`` (the cross-attentive
next-scale transformer), ``decoding`` (KV-cached sampling), ``adapter`` (training stages), ``variants``
(registered methods and Table 4's ablations), ``oracle`` (what the tokenizer can express)."""
