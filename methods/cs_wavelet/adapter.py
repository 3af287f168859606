"""L1-wavelet compressed sensing with the shared sensitivity maps, through ``sigpy.mri.app.L1WaveletRecon``.

sigpy solves min_x 1/2 ||M F S x - y||^2 + lamda ||W x||_1 with its own SENSE operator; its FFT is the
same centred orthonormal convention as ``benchmark.physics`` (tested), so the physics agree. Runs on
the CPU (sigpy uses cupy for GPUs, which this suite does not require), one slice at a time.
"""

from __future__ import annotations

import numpy as np
import sigpy.mri
import torch

from benchmark.method import Method, ReconBatch
from methods.cs_wavelet.config import CONFIGS


class CSWavelet(Method):
    name = "cs_wavelet"
    relative_cost = 15.0  # ~1.5 s per slice of iterative wavelet CS on a CPU core
    configs = CONFIGS

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        kspace = batch.kspace.detach().cpu().numpy()
        maps = batch.maps.detach().cpu().numpy()
        mask = batch.mask.detach().cpu().numpy().astype(np.float32)
        images = []
        for index in range(kspace.shape[0]):
            app = sigpy.mri.app.L1WaveletRecon(
                kspace[index],
                maps[index],
                lamda=self.config.lamda,
                weights=mask[index],
                wave_name=self.config.wavelet,
                max_iter=self.config.max_iter,
                show_pbar=False,
            )
            images.append(torch.from_numpy(np.asarray(app.run(), dtype=np.complex64)))
        return torch.stack(images).to(batch.kspace.device)
