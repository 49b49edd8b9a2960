"""Fine-tuning modes: which weights of a detector train (`model.tuning`), and the plain weights it is saved as.

- `full`: every weight trains (the default).
- `norm`: only normalisation layers' affine parameters and the head train (GenD's idea).
- `last_n`: the last N blocks of the backbone, everything after them, and the head train; blocks come from timm's
  `group_matcher` (one group per residual block), so no model needs its own list of names.
- `lowrank`: a trainable low-rank residual `W + alpha / r * B @ A` on the frozen weight of every linear and 1x1
  convolution of the backbone (LoRA), plus the head. The residual is a `torch.nn.utils.parametrize`
  parametrization: module names and forward code stay as timm wrote them, and the saved weights are the merged
  `W + alpha / r * B @ A` under the plain names (`plain_state_dict`), so every consumer sees a plain timm model.
- `svd`: Effort's idea on the same layers: each weight's top singular components stay frozen and its `rank`
  smallest ones (`U_k diag(S_k) V_k^T`, started from the weight's own SVD) train, plus the head; saved merged
  like `lowrank`. `constraints: w` adds w times Effort's two penalties to the training loss (`svd_penalty`): the
  singular vectors stay orthonormal (the trained ones among themselves and against the frozen ones) and the
  weight keeps its Frobenius norm; 0 (the default) trains without them. The trained vectors are unit vectors: at
  the low-rank mode's lr (3e-3) they moved until the features carried no signal, penalties or not; svd trains at
  full fine-tuning's lr (3e-4), where the penalties keep them about three times closer to orthonormal.

BatchNorm running statistics: a BatchNorm layer whose affine parameters are frozen is kept in eval mode (its
statistics stay the pretrained ones). In `norm` mode the trained BatchNorm layers also keep their statistics by
default (`norm_stats: frozen`): with statistics fixed, a BatchNorm layer at inference is a per-channel affine map,
which the trained scale and shift can re-fit on their own, without batch-size noise or a train/eval mismatch;
`norm_stats: update` lets them follow the training data instead. In `last_n` the BatchNorm layers of the trained
blocks update as in full fine-tuning.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from deepdetect.models.detector import Detector

log = logging.getLogger(__name__)

MODES = ("full", "norm", "last_n", "lowrank", "svd")
RESIDUAL_MODES = ("lowrank", "svd")  # modes that parametrize weights (merged when saved)
NORM_STATS = ("frozen", "update")
_MODE_SETTINGS = {
    "full": (),
    "norm": ("norm_stats",),
    "last_n": ("last_n",),
    "lowrank": ("rank", "alpha"),
    "svd": ("rank", "constraints"),
}
# Normalisation layers whose affine parameters `norm` mode trains: torch's (timm's BatchNormAct2d, LayerNorm2d,
# GroupNorm1 and friends subclass them) and timm's own RMS/simple norms (`norm_modules` adds those).
_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
)


class TuningError(ValueError):
    """A `model.tuning` setting that cannot work (unknown mode, bad number, a model without block structure)."""


@dataclass(frozen=True)
class Tuning:
    """`model.tuning`: the mode and its settings (`last_n` for last_n, `rank`/`alpha` for lowrank, `rank` and
    `constraints` for svd)."""

    mode: str = "full"
    last_n: int = 2
    rank: int = 8
    alpha: float = 16.0
    norm_stats: str = "frozen"
    constraints: float = 0.0  # svd: the weight of Effort's orthogonality and norm penalties in the loss

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> Tuning:
        """Read and check `model.tuning` (absent: full fine-tuning)."""
        node = node or {}
        mode = str(node.get("mode", cls.mode))
        if mode not in MODES:
            raise TuningError(f"model.tuning.mode={mode!r} is not a tuning mode; expected one of {MODES}")
        norm_stats = str(node.get("norm_stats", cls.norm_stats))
        if norm_stats not in NORM_STATS:
            raise TuningError(f"model.tuning.norm_stats={norm_stats!r}; expected one of {NORM_STATS}")
        tuning = cls(
            mode=mode,
            last_n=_number(node, "last_n", cls.last_n, int),
            rank=_number(node, "rank", cls.rank, int),
            alpha=_number(node, "alpha", cls.alpha, float),
            norm_stats=norm_stats,
            constraints=_number(node, "constraints", cls.constraints, float),
        )
        for key in ("last_n", "rank", "alpha"):
            if getattr(tuning, key) <= 0:
                raise TuningError(f"model.tuning.{key} must be > 0, got {getattr(tuning, key)}")
        if not tuning.constraints >= 0:
            raise TuningError(f"model.tuning.constraints must be >= 0, got {tuning.constraints}")
        if tuning.constraints and mode != "svd":
            raise TuningError(f"model.tuning.constraints applies to mode=svd only, not mode={mode}")
        return tuning

    def to_dict(self) -> dict[str, Any]:
        """The settings that apply to this mode (recorded in the model card)."""
        keep = _MODE_SETTINGS[self.mode]
        return {"mode": self.mode, **{k: v for k, v in asdict(self).items() if k in keep}}


def _number(node: Mapping[str, Any], key: str, default: Any, kind: type) -> Any:
    value = node.get(key, default)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise TuningError(f"model.tuning.{key} must be a number, got {value!r}") from None


@dataclass(frozen=True)
class TuningReport:
    """What `apply_tuning` did: the mode's settings, trainable and total parameter counts, adapted layers."""

    tuning: Tuning
    trainable_params: int
    total_params: int
    lowrank_layers: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The `tuning` entry of the model card."""
        out = {**self.tuning.to_dict(), "trainable_params": self.trainable_params, "total_params": self.total_params}
        if self.tuning.mode in RESIDUAL_MODES:
            out["lowrank_layers"] = self.lowrank_layers
        return out


def apply_tuning(model: Detector, tuning: Tuning) -> TuningReport:
    """Freeze (and for lowrank, adapt) `model` in place as `tuning` says; returns the parameter counts."""
    adapted = 0
    if tuning.mode != "full":
        model.requires_grad_(False)
        if tuning.mode == "norm":
            for module in norm_modules(model.backbone):
                module.requires_grad_(True)
        elif tuning.mode == "last_n":
            names = set(last_blocks(model.backbone, tuning.last_n))
            for name, param in model.backbone.named_parameters():
                param.requires_grad_(name in names)
        else:
            adapted = add_lowrank(model.backbone, tuning.rank, tuning.alpha, svd=tuning.mode == "svd")
        for param in head_parameters(model):
            param.requires_grad_(True)
        freeze_norm_stats(model, update_trained=tuning.mode == "last_n" or tuning.norm_stats == "update")
    params = list(model.parameters())
    return TuningReport(
        tuning=tuning,
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_params=sum(p.numel() for p in params),
        lowrank_layers=adapted,
    )


def head_parameters(model: Detector) -> list[nn.Parameter]:
    """The parameters of the classifier (timm's `get_classifier()`) and of a patch head: they always train."""
    params = list(model.patch_head.parameters()) if model.patch_head is not None else []
    get_classifier = getattr(model.backbone, "get_classifier", None)
    classifier = get_classifier() if callable(get_classifier) else None
    if isinstance(classifier, nn.Module):
        params += list(classifier.parameters())
    return params


def norm_modules(module: nn.Module) -> list[nn.Module]:
    """The normalisation layers under `module` (BatchNorm, LayerNorm, GroupNorm, RMSNorm and timm's variants)."""
    from timm.layers import norm as timm_norm

    timm_types = (timm_norm.RmsNorm, timm_norm.RmsNorm2d, timm_norm.SimpleNorm, timm_norm.SimpleNorm2d)
    return [m for m in module.modules() if isinstance(m, _NORM_TYPES + timm_types)]


def block_groups(backbone: nn.Module) -> list[list[str]]:
    """Parameter names of a timm backbone in timm's fine `group_matcher` groups, first to last: the stem, one group
    per block (the last one holding what follows the blocks, e.g. a final norm), then the classifier."""
    from timm.models import group_parameters

    matcher = getattr(backbone, "group_matcher", None)
    if not callable(matcher):
        raise TuningError(f"{type(backbone).__name__} has no timm group_matcher; last_n needs its block structure")
    groups = group_parameters(backbone, matcher(coarse=False))
    return [groups[k] for k in sorted(groups)]


def last_blocks(backbone: nn.Module, n: int) -> list[str]:
    """Names of the parameters in the last `n` blocks of `backbone` and in everything after them."""
    groups = block_groups(backbone)
    blocks = len(groups) - 2  # less the stem and the classifier's group
    if n > blocks:
        raise TuningError(f"model.tuning.last_n={n} but {type(backbone).__name__} has {max(0, blocks)} blocks")
    return [name for group in groups[len(groups) - 1 - n :] for name in group]


class LowRankDelta(nn.Module):
    """A LoRA residual as a weight parametrization: `weight + alpha / r * (up @ down)` reshaped to the weight."""

    def __init__(self, weight: torch.Tensor, rank: int, alpha: float) -> None:
        super().__init__()
        out_features, in_features = weight.shape[0], weight[0].numel()
        rank = min(rank, out_features, in_features)
        self.down = nn.Parameter(torch.empty(rank, in_features, dtype=weight.dtype, device=weight.device))
        self.up = nn.Parameter(torch.zeros(out_features, rank, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.down, a=math.sqrt(5))  # as nn.Linear initialises; up = 0: starts at W
        self.scale = alpha / rank

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (self.scale * (self.up @ self.down)).view_as(weight)


class MinorComponents(nn.Module):
    """Effort's residual as a weight parametrization: the `rank` smallest singular components of the weight train
    (`u diag(s) vh`, started from its SVD), the rest stays frozen: `weight - start + u diag(s) vh`.

    The frozen singular vectors (`u_main`, `vh_main`) and the weight's squared Frobenius norm are kept for
    `penalty`, Effort's two constraints."""

    def __init__(self, weight: torch.Tensor, rank: int) -> None:
        super().__init__()
        u, s, vh = torch.linalg.svd(weight.reshape(weight.shape[0], -1).float(), full_matrices=False)
        k = min(rank, s.numel())
        main = [t.to(weight.dtype).contiguous() for t in (u[:, :-k], vh[:-k])]
        u, s, vh = (t.to(weight.dtype).contiguous() for t in (u[:, -k:], s[-k:], vh[-k:]))
        self.start: torch.Tensor
        self.u_main: torch.Tensor
        self.vh_main: torch.Tensor
        self.norm2: torch.Tensor
        self.register_buffer("start", (u * s) @ vh)  # the trained part's starting value, subtracted back out
        self.register_buffer("u_main", main[0], persistent=False)
        self.register_buffer("vh_main", main[1], persistent=False)
        self.register_buffer("norm2", weight.float().square().sum(), persistent=False)
        self.u, self.s, self.vh = nn.Parameter(u.clone()), nn.Parameter(s.clone()), nn.Parameter(vh.clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + ((self.u * self.s) @ self.vh - self.start).view_as(weight)

    def penalty(self, weight: torch.Tensor) -> torch.Tensor:
        """Effort's constraints on the current `weight` (this parametrization's output): how far the left and the
        right singular vectors, frozen and trained together, are from orthonormal (Frobenius norm of their Gram
        matrix less the identity, half each), plus how far the weight's squared Frobenius norm has moved from the
        pretrained one's, relative to it."""
        loss = weight.new_zeros(())
        for frozen, trained in ((self.u_main, self.u), (self.vh_main.T, self.vh.T)):
            cross = frozen.T @ trained  # frozen vectors are orthonormal among themselves: their block is exact
            own = trained.T @ trained - torch.eye(trained.shape[1], dtype=trained.dtype, device=trained.device)
            loss = loss + 0.5 * torch.sqrt(2 * cross.square().sum() + own.square().sum() + 1e-12)
        return loss + (weight.float().square().sum() - self.norm2).abs() / self.norm2


def lowrank_targets(backbone: nn.Module) -> list[nn.Linear | nn.Conv2d]:
    """The layers a low-rank residual adapts: every nn.Linear and 1x1, ungrouped nn.Conv2d but the classifier."""
    get_classifier = getattr(backbone, "get_classifier", None)
    classifier = get_classifier() if callable(get_classifier) else None
    head = set(classifier.modules()) if isinstance(classifier, nn.Module) else set()
    out: list[nn.Linear | nn.Conv2d] = []
    for module in backbone.modules():
        if module in head:
            continue
        pointwise = isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1
        if isinstance(module, nn.Linear) or pointwise:
            out.append(module)  # type: ignore[arg-type]
    return out


def add_lowrank(backbone: nn.Module, rank: int, alpha: float, svd: bool = False) -> int:
    """Put a trainable low-rank residual (`svd`: trainable smallest singular components) on the frozen weight of
    each `lowrank_targets` layer; returns how many."""
    targets = lowrank_targets(backbone)
    for module in targets:
        weight = module.weight.detach()
        delta = MinorComponents(weight, rank) if svd else LowRankDelta(weight, rank, alpha)
        parametrize.register_parametrization(module, "weight", delta)
        _parametrizations(module)["weight"].original.requires_grad_(False)
    return len(targets)


def svd_penalty(model: nn.Module) -> torch.Tensor | None:
    """The mean of Effort's constraints (`MinorComponents.penalty`) over the layers an `svd` residual adapts;
    None when `model` has none."""
    terms = [
        first.penalty(getattr(module, name))
        for module in model.modules()
        if parametrize.is_parametrized(module)
        for name, chain in _parametrizations(module).items()
        if isinstance(first := next(iter(chain.children())), MinorComponents)
    ]
    return torch.stack(terms).mean() if terms else None


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """`model.state_dict()` with every low-rank residual merged into its weight, under the plain timm names."""
    state = {k: v for k, v in model.state_dict().items() if ".parametrizations." not in f".{k}"}
    with torch.no_grad():
        for name, module in model.named_modules():
            if parametrize.is_parametrized(module):
                for tensor_name in _parametrizations(module):
                    key = f"{name}.{tensor_name}" if name else tensor_name
                    state[key] = getattr(module, tensor_name).detach()
    return state


def _parametrizations(module: nn.Module) -> nn.ModuleDict:
    """The `parametrizations` ModuleDict torch's parametrize adds to a module (tensor name -> its chain)."""
    found = getattr(module, "parametrizations", None)
    return found if isinstance(found, nn.ModuleDict) else nn.ModuleDict()


def merge_lowrank(model: nn.Module) -> None:
    """Fold every low-rank residual into its weight in place: `model` becomes a plain timm model again."""
    for module in list(model.modules()):
        if parametrize.is_parametrized(module):
            for tensor_name in list(_parametrizations(module)):
                parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=True)


def freeze_norm_stats(model: Detector, update_trained: bool) -> None:
    """Keep BatchNorm layers in eval mode through training: the frozen ones always, the trained ones unless
    `update_trained` (see the module docstring)."""
    fixed: list[nn.Module] = []
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            trains = any(p.requires_grad for p in module.parameters(recurse=False))
            if not (trains and update_trained):
                fixed.append(module)
    model.fixed_stats = fixed
    model.train(model.training)
