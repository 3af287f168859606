"""Mamba's selective scan (S6) with two back ends: ``mamba_ssm``'s CUDA kernel, or pure PyTorch.

The recurrence, per channel d and state n, over positions t::

    h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t        y_t = C_t · h_t + D u_t,    Δ = softplus(δ + bias)

The arguments follow ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn`` (u, δ: (b, d, l); A: (d, n);
B, C: (b, g, n, l) shared by the d / g channels of each group; D: (d,)), so both back ends take the same call.
``mamba_ssm`` builds only with CUDA and is optional: it is used when it imports and the tensors are on a GPU.
Everywhere else the scan runs in pure PyTorch with ``mambapy``'s parallel (Blelloch) scan. Written by hand here:
the discretisation around it and the chunking over l — the recurrence's state is carried from one chunk to the
next by folding ``exp(Δ A) h`` into the chunk's first input, so the forward pass's (b, d, l, n) intermediates
never exceed one chunk (inference at 256² fits in CPU memory; in training autograd still keeps every chunk's,
which is why MambaRecon's paper profile recomputes its blocks). Shared by MambaRecon and MDPG.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mambapy.pscan import pscan

try:  # optional CUDA kernel; any failure to load it (no package, no CUDA runtime) means the PyTorch path
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _cuda_selective_scan
except Exception:  # noqa: BLE001 - mamba_ssm raises ImportError or OSError depending on what is missing
    _cuda_selective_scan = None

#: Positions per chunk of the PyTorch path: (b, d, chunk, n) float32 tensors bound its memory.
DEFAULT_CHUNK = 4096


def cuda_kernel_available() -> bool:
    return _cuda_selective_scan is not None


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = True,
    backend: str = "auto",
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """y (b, d, l) of the selective scan. ``backend``: ``auto`` (CUDA kernel when usable), ``cuda`` or ``torch``."""
    if backend not in ("auto", "cuda", "torch"):
        raise ValueError(f"unknown selective-scan backend {backend!r}")
    use_cuda = backend == "cuda" or (backend == "auto" and u.is_cuda and _cuda_selective_scan is not None)
    if use_cuda:
        if _cuda_selective_scan is None or not u.is_cuda:
            raise RuntimeError("the 'cuda' selective scan needs mamba_ssm and CUDA tensors")
        return _cuda_selective_scan(u, delta, A, B, C, D.float(), None, delta_bias, delta_softplus)
    return _torch_selective_scan(u, delta, A, B, C, D, delta_bias, delta_softplus, chunk_size)


def _torch_selective_scan(u, delta, A, B, C, D, delta_bias, delta_softplus, chunk_size):
    dtype = u.dtype
    compute = torch.promote_types(dtype, torch.float32)  # bf16/fp16 inputs scan in float32
    u, delta, A, B, C, D = (t.to(compute) for t in (u, delta, A, B, C, D))
    if delta_bias is not None:
        delta = delta + delta_bias.to(compute)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, channels, length = u.shape
    groups, states = B.shape[1], B.shape[2]
    per_group = channels // groups
    state = u.new_zeros(batch, channels, states)
    outputs = []
    for start in range(0, length, chunk_size):
        span = slice(start, min(start + chunk_size, length))
        dt = delta[..., span]
        decay = torch.exp(dt[..., None] * A[:, None, :])  # (b, d, L, n)
        drive = (
            (dt * u[..., span]).view(batch, groups, per_group, -1)[..., None]
            * B[..., span].transpose(-1, -2)[:, :, None]
        ).reshape(batch, channels, -1, states)
        # Carry the previous chunk's state in: h_0 = decay_0 h_prev + drive_0.
        drive = torch.cat([drive[:, :, :1] + decay[:, :, :1] * state[:, :, None], drive[:, :, 1:]], dim=2)
        # mambapy takes (b, L, d, n) and scans its (b, d, L, n) transpose: handing it transposed views of
        # contiguous (b, d, L, n) tensors makes that transpose contiguous, so the scan walks memory in order.
        hidden = pscan(decay.transpose(1, 2), drive.transpose(1, 2)).transpose(1, 2)  # (b, d, L, n)
        state = hidden[:, :, -1]
        readout = C[..., span].transpose(-1, -2)[:, :, None]  # (b, g, 1, L, n)
        y = (hidden.reshape(batch, groups, per_group, -1, states) * readout).sum(-1)
        outputs.append(y.reshape(batch, channels, -1))
    y = torch.cat(outputs, dim=-1) + D[:, None] * u
    return y.to(dtype)
