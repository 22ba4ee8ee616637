"""Restricted Boltzmann machines and their greedy stacking, after Hinton & Salakhutdinov 2006
(the procedure of their published rbm.m and rbmhidlinear.m).

Visible units are logistic (pixel intensities and lower layers' probabilities are used as
probabilities); hidden units are binary stochastic, or linear with unit-variance Gaussian
noise for the top RBM of a linear code. Training is one step of contrastive divergence
(CD-1) with momentum and weight cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from cae_codec.mnistdae.network import DeepAutoencoder


@dataclass(frozen=True)
class RbmSchedule:
    """CD-1 hyper-parameters (the paper's: 0.1, or 0.001 for linear hidden units; weight cost
    0.0002; momentum 0.5 for the first 5 epochs, then 0.9; batches of 100)."""

    epochs: int = 10
    lr: float = 0.1
    lr_linear: float = 0.001
    weight_cost: float = 0.0002
    momentum_start: float = 0.5
    momentum: float = 0.9
    momentum_switch: int = 5  # epochs at momentum_start
    batch: int = 100


class Rbm:
    """An RBM of ``visible`` x ``hidden`` units (plain tensors: CD-1 needs no autograd)."""

    def __init__(self, visible: int, hidden: int, linear_hidden: bool, gen: torch.Generator) -> None:
        self.linear_hidden = linear_hidden
        self.weight = 0.1 * torch.randn(visible, hidden, generator=gen)
        self.visible_bias = torch.zeros(visible)
        self.hidden_bias = torch.zeros(hidden)

    def hidden_mean(self, v: torch.Tensor) -> torch.Tensor:
        pre = v @ self.weight + self.hidden_bias
        return pre if self.linear_hidden else torch.sigmoid(pre)

    def visible_mean(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h @ self.weight.T + self.visible_bias)

    def train(
        self,
        data: torch.Tensor,
        schedule: RbmSchedule,
        gen: torch.Generator,
        report: Callable[[int, float], None] | None = None,
    ) -> None:
        """CD-1 over ``data`` (N, visible) for the schedule's epochs; ``report(epoch, error)``
        after each with the mean squared reconstruction error per case."""
        lr = schedule.lr_linear if self.linear_hidden else schedule.lr
        inc_w = torch.zeros_like(self.weight)
        inc_v = torch.zeros_like(self.visible_bias)
        inc_h = torch.zeros_like(self.hidden_bias)
        n = len(data)
        for epoch in range(schedule.epochs):
            momentum = schedule.momentum_start if epoch < schedule.momentum_switch else schedule.momentum
            order = torch.randperm(n, generator=gen)
            error = 0.0
            for start in range(0, n, schedule.batch):
                v0 = data[order[start : start + schedule.batch]]
                h0 = self.hidden_mean(v0)
                if self.linear_hidden:
                    h_sample = h0 + torch.randn(h0.shape, generator=gen)
                else:
                    h_sample = (h0 > torch.rand(h0.shape, generator=gen)).to(h0.dtype)
                v1 = self.visible_mean(h_sample)
                h1 = self.hidden_mean(v1)
                b = len(v0)
                grad_w = (v0.T @ h0 - v1.T @ h1) / b - schedule.weight_cost * self.weight
                inc_w.mul_(momentum).add_(grad_w, alpha=lr)
                inc_v.mul_(momentum).add_((v0 - v1).mean(0), alpha=lr)
                inc_h.mul_(momentum).add_((h0 - h1).mean(0), alpha=lr)
                self.weight += inc_w
                self.visible_bias += inc_v
                self.hidden_bias += inc_h
                error += float(((v0 - v1) ** 2).sum())
            if report is not None:
                report(epoch + 1, error / n)


def pretrain_stack(
    data: torch.Tensor,
    sizes: tuple[int, ...],
    linear_top: bool,
    schedule: RbmSchedule,
    gen: torch.Generator,
    report: Callable[[int, int, float], None] | None = None,
) -> list[Rbm]:
    """Greedy layer-wise pre-training: each RBM learns the hidden probabilities (the linear
    top's means) of the one below on the whole training set. ``report(layer, epoch, error)``."""
    stack: list[Rbm] = []
    x = data
    for layer, (v, h) in enumerate(itertools.pairwise(sizes)):
        rbm = Rbm(v, h, linear_top and layer == len(sizes) - 2, gen)

        def report_layer(epoch: int, error: float, number: int = layer + 1) -> None:
            if report is not None:
                report(number, epoch, error)

        rbm.train(x, schedule, gen, report_layer)
        stack.append(rbm)
        with torch.no_grad():
            x = torch.cat([rbm.hidden_mean(x[i : i + 10_000]) for i in range(0, len(x), 10_000)])
    return stack


def unroll(stack: list[Rbm], network: DeepAutoencoder) -> None:
    """Copy the stack into ``network`` (a DeepAutoencoder of the stack's sizes): the encoder
    takes each RBM's weights and hidden biases, the decoder the transposed weights and the
    visible biases, top RBM first."""
    encoder, decoder = network.encoder, network.decoder
    with torch.no_grad():
        for enc, rbm in zip(encoder, stack, strict=True):
            assert isinstance(enc, torch.nn.Linear)
            enc.weight.copy_(rbm.weight.T)
            enc.bias.copy_(rbm.hidden_bias)
        for dec, rbm in zip(decoder, reversed(stack), strict=True):
            assert isinstance(dec, torch.nn.Linear)
            dec.weight.copy_(rbm.weight)
            dec.bias.copy_(rbm.visible_bias)
