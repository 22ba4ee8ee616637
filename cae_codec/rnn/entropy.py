"""The entropy model of the recurrent codec's bits, and their range coding.

Each bit's probability comes from the bits coded before it: the same bit in the two previous
passes, the bit of the previous channel at the same place in this pass, and four spatial
neighbours. Within a pass the bits are coded channel by channel, and within a channel in two
halves of a checkerboard: the "black" squares ((row + column) even) first, whose neighbours
are taken from the previous pass, then the "white" ones, whose four neighbours in this pass are
all black and already decoded. The decoder so decodes a whole half-channel at a time (two
vectorized calls per channel and pass) and still sees causal neighbours of the same pass.

The model is a table of integer probabilities (of a bit being +1, in units of 2**-16) indexed
by (pass bucket, channel, context), fitted by counting on the bits the trained network makes of
training crops. Encoder and decoder compute the same integer index from the same bits and read
the same integer, so the probabilities are identical on any machine, device and thread count by
construction: no floating-point arithmetic happens between the bits and the coder, whose
fixed-point model (constriction's Bernoulli, given ``q / 2**16``, exact in binary64) is
deterministic. The range coder is constriction's (queue.RangeEncoder, 32-bit words).

This module is torch-free except :func:`fit_tables`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cae_codec.errors import FormatError

if TYPE_CHECKING:
    import torch

    from cae_codec.rnn.network import RecurrentCodec
    from cae_codec.trainkit import PatchSampler

PRECISION = 16  # probabilities in units of 2**-16
ONE = 1 << PRECISION
Q_MIN = 32  # no bit is ever costlier than 11 bits
# the passes' buckets: early passes have their own tables, later ones share
BUCKET_OF_PASS = np.array([0, 1, 2, 3, 4, 4, 5, 5, 5] + [6] * 55, dtype=np.int64)
BUCKETS = 7
# context: previous pass (3 states: absent, -1, +1), the pass before (3), previous channel (3),
# neighbour sum -4..4 (9), checkerboard half (2)
CONTEXTS = 3 * 3 * 3 * 9 * 2
TABLE = "entropy.q_plus"
# how much a fine context's counts weigh against its (bucket, channel) prior, in pseudo-counts
PRIOR_WEIGHT = 8
_STATE = np.array([1, 0, 2], dtype=np.int64)  # bit -1, absent (0), +1 -> context state


def state(bits: np.ndarray) -> np.ndarray:
    """int8 bits in {-1, 0 (absent), +1} -> states 1, 0, 2."""
    return _STATE[bits.astype(np.int64) + 1]


def neighbour_sum(plane: np.ndarray) -> np.ndarray:
    """Sum of the four neighbours of every place of (..., h, w) int8 ±1/0 planes (0 outside)."""
    p = np.pad(plane.astype(np.int64), [(0, 0)] * (plane.ndim - 2) + [(1, 1), (1, 1)])
    return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]


def checkerboard(h: int, w: int) -> np.ndarray:
    """(h, w) bool: the white squares ((row + column) odd), coded second."""
    return (np.add.outer(np.arange(h), np.arange(w)) % 2).astype(bool)


def contexts(cur: np.ndarray, prev1: np.ndarray | None, prev2: np.ndarray | None) -> np.ndarray:
    """Context index of every bit of a pass: ``cur`` (..., C, h, w) int8 ±1, the previous passes
    the same shape or None. The index of a bit depends only on bits coded before it."""
    zeros = np.zeros_like(cur)
    p1 = zeros if prev1 is None else prev1
    p2 = zeros if prev2 is None else prev2
    above = np.concatenate([zeros[..., :1, :, :], cur[..., :-1, :, :]], axis=-3)  # channel c-1
    white = checkerboard(*cur.shape[-2:])
    s = np.where(white, neighbour_sum(cur), neighbour_sum(p1))
    return _index(state(p1), state(p2), state(above), s, white.astype(np.int64))


def _index(p1: np.ndarray, p2: np.ndarray, above: np.ndarray, s: np.ndarray, half: np.ndarray) -> np.ndarray:
    return (((p1 * 3 + p2) * 3 + above) * 9 + (s + 4)) * 2 + half


def coding_order(shape: tuple[int, int, int]) -> np.ndarray:
    """Flat indices of a (C, h, w) pass in coding order: per channel, black squares then white."""
    c, h, w = shape
    white = checkerboard(h, w).reshape(-1)
    per = np.concatenate([np.flatnonzero(~white), np.flatnonzero(white)])
    return (np.arange(c)[:, None] * h * w + per[None, :]).reshape(-1)


class EntropyModel:
    """The fitted table: ``q[bucket, channel, context]``, int32 in Q_MIN..ONE - Q_MIN."""

    def __init__(self, table: np.ndarray) -> None:
        t = np.asarray(table)
        if t.ndim != 3 or t.shape[0] != BUCKETS or t.shape[2] != CONTEXTS:
            raise FormatError(f"entropy table of shape {t.shape}; expected ({BUCKETS}, C, {CONTEXTS})")
        if t.dtype.kind not in "iu" or int(t.min()) < Q_MIN or int(t.max()) > ONE - Q_MIN:
            raise FormatError("entropy table holds probabilities outside its integer range")
        self.q = t.astype(np.int64)

    @property
    def channels(self) -> int:
        return int(self.q.shape[1])

    def _probs(self, t: int, channel: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        q = self.q[BUCKET_OF_PASS[t], channel, ctx]
        return q.astype(np.float64) / ONE  # exact: an integer over a power of two

    def encode(self, cur: np.ndarray, prev1: np.ndarray | None, prev2: np.ndarray | None, t: int) -> bytes:
        """One pass's bits (C, h, w) int8 ±1 as range-coded bytes."""
        import constriction

        c, h, w = cur.shape
        order = coding_order((c, h, w))
        ctx = contexts(cur, prev1, prev2).reshape(-1)[order]
        chan = np.repeat(np.arange(c), h * w)
        symbols = (cur.reshape(-1)[order] > 0).astype(np.int32)
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode(symbols, constriction.stream.model.Bernoulli(perfect=False), self._probs(t, chan, ctx))
        return enc.get_compressed().astype("<u4").tobytes()

    def decode(
        self, data: bytes, shape: tuple[int, int, int], prev1: np.ndarray | None, prev2: np.ndarray | None, t: int
    ) -> np.ndarray:
        """The bits (C, h, w) int8 ±1 of one pass from its bytes. Reads only ``data``: bytes
        that do not come from the encoder decode to some bits of the right shape."""
        import constriction

        c, h, w = shape
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        dec = constriction.stream.queue.RangeDecoder(words)
        family = constriction.stream.model.Bernoulli(perfect=False)
        cur = np.zeros(shape, dtype=np.int8)
        zeros = np.zeros((h, w), dtype=np.int8)
        p1 = np.zeros(shape, dtype=np.int8) if prev1 is None else prev1
        p2 = np.zeros(shape, dtype=np.int8) if prev2 is None else prev2
        white = checkerboard(h, w)
        halves = (~white, white)
        for ch in range(c):
            above = state(cur[ch - 1] if ch else zeros)
            s_black = neighbour_sum(p1[ch])
            for half, where in enumerate(halves):
                s = s_black if half == 0 else neighbour_sum(cur[ch])
                ctx = _index(state(p1[ch]), state(p2[ch]), above, s, np.full((h, w), half))[where]
                symbols = dec.decode(family, self._probs(t, np.full(ctx.shape, ch), ctx))
                cur[ch][where] = np.where(np.asarray(symbols) > 0, 1, -1)
        return cur


def fit(bits: np.ndarray) -> np.ndarray:
    """The table from bits (N, T, C, h, w) int8 ±1 of training crops, by counting."""
    passes, c = bits.shape[1:3]
    ones = np.zeros((BUCKETS, c, CONTEXTS), dtype=np.int64)
    total = np.zeros_like(ones)
    chan = np.arange(c)[None, :, None, None]
    for t in range(passes):
        ctx = contexts(bits[:, t], bits[:, t - 1] if t else None, bits[:, t - 2] if t > 1 else None)
        flat = (chan * CONTEXTS + ctx).reshape(-1)
        b = BUCKET_OF_PASS[t]
        total[b] += np.bincount(flat, minlength=c * CONTEXTS).reshape(c, CONTEXTS)
        ones[b] += (
            np.bincount(flat, weights=(bits[:, t] > 0).reshape(-1), minlength=c * CONTEXTS)
            .astype(np.int64)
            .reshape(c, CONTEXTS)
        )
    prior = (ones.sum(2, keepdims=True) + 1) / (total.sum(2, keepdims=True) + 2)
    p = (ones + PRIOR_WEIGHT * prior) / (total + PRIOR_WEIGHT)
    return np.clip(np.rint(p * ONE), Q_MIN, ONE - Q_MIN).astype(np.int32)


def network_bits(net: RecurrentCodec, x: torch.Tensor, passes: int) -> np.ndarray:
    """(N, T, C, h, w) int8 ±1: the bits the network codes of crops ``x`` (pixels in [0, 1])."""
    import torch

    with torch.inference_mode():
        target = x - 0.5
        enc = net.encoder_state(target)
        dec = None
        recon = torch.zeros_like(target)
        out_bits = []
        for t in range(passes):
            gain = net.gain_for(recon, t)
            residual = target - recon
            codes, enc = net.encode_step(residual if gain is None else residual * gain, enc)
            b = net.binarize(codes, False)
            if dec is None:
                dec = net.decoder_state(b)
            out, dec = net.decode_step(b, dec)
            recon = net.next_reconstruction(recon, out, gain)
            out_bits.append(b.to(torch.int8).cpu().numpy())
    return np.stack(out_bits, axis=1)


def fit_tables(net: RecurrentCodec, sampler: PatchSampler, crops: int, seed: int) -> dict[str, torch.Tensor]:
    """The entropy table, fitted on the bits of ``crops`` crops of ``sampler``'s images, as the
    weights file's extra tensor."""
    import torch

    from cae_codec.trainkit import step_generator

    parts = []
    batch = 64
    for i in range(0, crops, batch):
        g = step_generator(seed, 1 << 20, i, sampler.device)  # away from the training steps' seeds
        x = sampler.sample(min(batch, crops - i), g)
        parts.append(network_bits(net, x, net.config.passes))
    return {TABLE: torch.from_numpy(fit(np.concatenate(parts)))}
