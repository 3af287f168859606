"""Recurrent Variational Network (RecurrentVarNet; Yiasemis et al., CVPR 2022).

Written here rather than imported because DIRECT (PyPI ``direct-recon``) requires Python >= 3.12 and its
2.x sdists build a C++ extension that downloads nanobind at build time, so it cannot be installed
reliably where this suite runs. The architecture, defaults and parameter names follow DIRECT's
``direct.nn.recurrentvarnet`` and ``direct.nn.recurrent.Conv2dGRU``, so DIRECT's class loads these
weights unchanged; ``tests/test_recurrentvarnet.py`` asserts equal outputs whenever ``direct`` imports.
The MRI physics (centred orthonormal FFT, coil expand/reduce) is ``benchmark.physics``'s.

Each of T blocks updates k-space ``k <- k - alpha_t M (k - y) + F S w_t`` where ``w_t`` is the output of
a convolutional GRU applied to the coil-combined image ``S^H F^-1 k``, whose hidden state carries
across blocks; an optional recurrent state initializer (RSI) computes the first hidden state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.method import to_channels, to_complex
from benchmark.physics import fft2c, ifft2c, sense_combine


class ConvGRU(nn.Module):
    """DIRECT's ``Conv2dGRU`` with its defaults: 5x5 then dilated 3x3 convolutions, 1x1 gates,
    replication padding, orthogonal gate initialisation."""

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers, self.hidden_channels = num_layers, hidden_channels
        self.conv_blocks = nn.ModuleList()
        for index in range(num_layers + 1):
            conv = nn.Conv2d(
                in_channels if index == 0 else hidden_channels,
                hidden_channels if index < num_layers else in_channels,
                kernel_size=5 if index == 0 else 3,
                dilation=2 if index == 1 else 1,
            )
            self.conv_blocks.append(nn.Sequential(nn.ReplicationPad2d(2 if index <= 1 else 1), conv))
        self.reset_gates, self.update_gates, self.out_gates = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for _ in range(num_layers):
            for gates, bias in ((self.reset_gates, -1.0), (self.update_gates, 0.0), (self.out_gates, 0.0)):
                gate = nn.Conv2d(2 * hidden_channels, hidden_channels, kernel_size=1)
                nn.init.orthogonal_(gate.weight)
                nn.init.constant_(gate.bias, bias)
                gates.append(nn.Sequential(gate))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[-2:], self.num_layers)
        new_states = []
        for index in range(self.num_layers):
            x = F.relu(self.conv_blocks[index](x))
            previous = state[..., index]
            stacked = torch.cat([x, previous], dim=1)
            update = torch.sigmoid(self.update_gates[index](stacked))
            reset = torch.sigmoid(self.reset_gates[index](stacked))
            delta = torch.tanh(self.out_gates[index](torch.cat([x, previous * reset], dim=1)))
            x = previous * (1 - update) + delta * update
            new_states.append(x)
            x = F.relu(x)
        return self.conv_blocks[self.num_layers](x), torch.stack(new_states, dim=-1)


class RecurrentInit(nn.Module):
    """Recurrent state initializer: dilated convolutions, then one 1x1 head per GRU layer."""

    def __init__(self, in_channels: int, out_channels: int, channels, dilations, depth: int, multiscale: int) -> None:
        super().__init__()
        self.multiscale = multiscale
        self.conv_blocks = nn.ModuleList()
        previous = in_channels
        for width, dilation in zip(channels, dilations, strict=True):
            self.conv_blocks.append(
                nn.Sequential(nn.ReplicationPad2d(dilation), nn.Conv2d(previous, width, 3, dilation=dilation))
            )
            previous = width
        aggregated = sum(channels[-multiscale:])
        self.out_blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(aggregated, out_channels, 1)) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = []
        for block in self.conv_blocks:
            x = F.relu(block(x))
            features.append(x)
        if self.multiscale > 1:
            x = torch.cat(features[-self.multiscale :], dim=1)
        return torch.stack([F.relu(block(x)) for block in self.out_blocks], dim=-1)


class RecurrentVarNetBlock(nn.Module):
    def __init__(self, hidden_channels: int, num_layers: int) -> None:
        super().__init__()
        self.learning_rate = nn.Parameter(torch.tensor([1.0]))
        self.regularizer = ConvGRU(2, hidden_channels, num_layers)

    def forward(self, kspace, measured, mask, maps, state):
        error = torch.where(mask[:, None], kspace - measured, torch.zeros_like(kspace))
        image = sense_combine(ifft2c(kspace), maps)
        update, state = self.regularizer(to_channels(image), state)
        regularizer_kspace = fft2c(maps * to_complex(update)[:, None])
        return kspace - self.learning_rate * error + regularizer_kspace, state


class RecurrentVarNet(nn.Module):
    """k-space in, k-space out: ``forward(masked (B,C,H,W) complex, mask (B,H,W) bool, maps) -> k-space``."""

    def __init__(
        self,
        num_steps: int,
        hidden_channels: int,
        num_layers: int,
        learned_initializer: bool = True,
        initializer_channels: tuple[int, ...] = (32, 32, 64, 64),
        initializer_dilations: tuple[int, ...] = (1, 1, 2, 4),
        initializer_multiscale: int = 1,
    ) -> None:
        super().__init__()
        self.initializer = None
        if learned_initializer:
            self.initializer = RecurrentInit(
                2, hidden_channels, initializer_channels, initializer_dilations, num_layers, initializer_multiscale
            )
        self.block_list = nn.ModuleList(RecurrentVarNetBlock(hidden_channels, num_layers) for _ in range(num_steps))

    def forward(self, masked: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        state = None
        if self.initializer is not None:
            # DIRECT's "sense" initialisation feeds the RSI the k-space of the SENSE image.
            state = self.initializer(to_channels(fft2c(sense_combine(ifft2c(masked), maps))))
        kspace = masked.clone()
        for block in self.block_list:
            kspace, state = block(kspace, masked, mask, maps, state)
        return kspace
