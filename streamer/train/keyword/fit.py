"""Truncated-BPTT training on long streams with state carried across segments and streams (never reset)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from streamer.train.keyword.assemble import IGNORE
from streamer.train.keyword.dataset import FeatureStream
from streamer.train.keyword.model import KeywordNet


@dataclass(frozen=True)
class FitConfig:
    """Optimisation settings; `lanes` streams run side by side, each cut into `segment_steps` for BPTT."""

    steps: int = 1500
    lanes: int = 128
    segment_steps: int = 200
    learning_rate: float = 3e-3
    keyword_weight: float = 2.0
    freq_masks: int = 2  # SpecAugment: bands of mel bins set to their mean, per lane and segment
    freq_mask_bins: int = 6  # widest band masked
    warp: float = 0.0  # VTLP: the mel axis stretched by a factor in [1/(1+warp), 1+warp] per lane and segment
    seed: int = 0
    device: str = "cpu"  # where the optimiser runs ("cuda" for a GPU); the network comes back on the CPU


def _lanes(streams: Sequence[FeatureStream], lanes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Streams shuffled and concatenated into `lanes` equally long rows: [lanes, T, F] and [lanes, T]."""
    order = rng.permutation(len(streams))
    groups = [g for g in np.array_split(order, min(lanes, len(streams))) if len(g)]
    features = [np.concatenate([streams[i].features for i in g]) for g in groups]
    targets = [np.concatenate([streams[i].targets for i in g]) for g in groups]
    length = min(len(f) for f in features)
    return (np.stack([f[:length] for f in features]), np.stack([t[:length] for t in targets]))


def mask_frequencies(
    x: torch.Tensor, mean: torch.Tensor, masks: int, widest: int, generator: torch.Generator
) -> torch.Tensor:
    """SpecAugment's frequency masking: in each lane, `masks` bands of up to `widest` mel bins (random width and
    place, the same for the whole segment) are set to the bins' training mean, i.e. to 0 after normalisation."""
    lanes, _, bins = x.shape
    if masks <= 0 or widest <= 0:
        return x
    hidden = torch.zeros(lanes, bins, dtype=torch.bool)
    index = torch.arange(bins)
    for _ in range(masks):
        width = torch.randint(0, widest + 1, (lanes, 1), generator=generator)
        start = (torch.rand(lanes, 1, generator=generator) * (bins - width + 1)).long()
        hidden |= (index >= start) & (index < start + width)
    return torch.where(hidden[:, None, :], mean, x)


def warp_bands(x: torch.Tensor, centres_hz: np.ndarray, factors: np.ndarray) -> torch.Tensor:
    """Move what each lane of `x` [lanes, T, bands] had at f Hz to factors[lane]·f Hz: band k takes the value
    (linearly interpolated between bands) found at centres_hz[k] / factor; beyond the edges, the edge band's."""
    lanes, steps, bands = x.shape
    source = np.stack([np.interp(centres_hz / a, centres_hz, np.arange(bands)) for a in factors])
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, bands - 1)
    weight = torch.from_numpy((source - low).astype(np.float32))[:, None, :]
    low_t = torch.from_numpy(low)[:, None, :].expand(lanes, steps, bands)
    high_t = torch.from_numpy(high)[:, None, :].expand(lanes, steps, bands)
    return x.gather(2, low_t) * (1 - weight) + x.gather(2, high_t) * weight


def warp_frequencies(
    x: torch.Tensor, centres_hz: np.ndarray, max_warp: float, generator: torch.Generator
) -> torch.Tensor:
    """Vocal tract length perturbation on log-mel features: per lane a factor log-uniform in
    [1/(1+max_warp), 1+max_warp] (> 1: like a shorter vocal tract, formants higher). At 0, nothing is drawn."""
    if max_warp <= 0:
        return x
    span = float(np.log1p(max_warp))
    factors = torch.exp((torch.rand(x.shape[0], generator=generator) * 2 - 1) * span)
    return warp_bands(x, centres_hz, factors.numpy())


def normalisation(streams: Sequence[FeatureStream]) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and standard deviation of the training features."""
    stacked = np.concatenate([s.features[::4] for s in streams]).astype(np.float64)
    return stacked.mean(axis=0), stacked.std(axis=0)


def fit(
    net: KeywordNet,
    streams: Sequence[FeatureStream],
    config: FitConfig,
    centres_hz: np.ndarray | None = None,
) -> list[float]:
    """Train in place; returns the loss per step. Each lane is an endless stream: the state is carried from
    segment to segment and across stream boundaries (detached, so gradients stop at segment edges).
    `centres_hz`, the mel bands' centre frequencies, is needed when `config.warp` > 0.

    Random draws (lane order, masks) are made on the CPU whatever the device, so a GPU run sees the same data."""
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    device = torch.device(config.device)
    features, targets = _lanes(streams, config.lanes, rng)
    lanes, length, _ = features.shape
    classes = net.head.out_features
    weights = torch.full((classes,), config.keyword_weight)
    weights[0] = 1.0
    mean = net.feature_mean.detach().clone()  # the masks' fill value, on the CPU
    net.to(device)
    weights = weights.to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.learning_rate, total_steps=config.steps, pct_start=0.1
    )
    if config.warp > 0 and centres_hz is None:
        raise ValueError("FitConfig.warp > 0 needs the mel bands' centre frequencies (centres_hz)")
    state = net.zero_state(lanes).to(device)
    generator = torch.Generator().manual_seed(config.seed)
    position = 0
    losses = []
    net.train()
    with tqdm(range(config.steps), desc="train", unit="step") as bar:
        for step in bar:
            if position + config.segment_steps > length:
                position = 0  # wrap: the lane jumps to its own start, like one more stream boundary
            x = torch.from_numpy(features[:, position : position + config.segment_steps].astype(np.float32))
            y = torch.from_numpy(targets[:, position : position + config.segment_steps].astype(np.int64))
            position += config.segment_steps
            if centres_hz is not None:
                x = warp_frequencies(x, centres_hz, config.warp, generator)
            x = mask_frequencies(x, mean, config.freq_masks, config.freq_mask_bins, generator).to(device)
            y = y.to(device)
            logits, state = net(x, state.detach())
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, classes), y.reshape(-1), weight=weights, ignore_index=IGNORE
            )
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            if step % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
    net.to("cpu")
    net.eval()
    return losses


@torch.no_grad()
def probabilities(net: KeywordNet, streams: Sequence[FeatureStream]) -> np.ndarray:
    """Per-step class probabilities of the streams played back to back as ONE stream (state carried)."""
    state = net.zero_state(1)
    out = []
    for stream in streams:
        logits, state = net(torch.from_numpy(stream.features.astype(np.float32))[None], state)
        out.append(torch.softmax(logits[0], dim=-1).numpy())
    return np.concatenate(out)


def targets_ignored_fraction(streams: Sequence[FeatureStream]) -> float:
    total = sum(len(s.targets) for s in streams)
    return sum(int((s.targets == IGNORE).sum()) for s in streams) / max(total, 1)
