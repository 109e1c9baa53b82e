"""Vision pieces shared by the captioning and VQA tasks.

- ``RegionEncoder``: image (B, 3, H, W) -> a grid of L = grid * grid region features (B, L, dim),
  the "annotation vectors" a_1..a_L of Xu et al. 2015. The trunk is a small conv net (the default,
  fast on a CPU) or a torchvision backbone built with ``weights=None`` (nothing is downloaded).
  Optional CoordConv input channels (Liu et al. 2018) let convolutions bind content to position,
  which a mean-pooled baseline needs to know where things are; an optional learned position
  embedding is added to each region (it pools away to a constant, so it only helps attention).
- ``load_image`` / ``load_images``: read image files into uint8 tensors, raising ValueError that
  names the file when it is missing or unreadable; ``read_json``: the same for JSON files.
- ``COLOURS``, ``shape_mask``, ``render_cells``: plain tensor-op rendering of the embedded scenes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 25), "green": (30, 180, 40), "blue": (30, 60, 230),
    "yellow": (235, 215, 20), "purple": (150, 40, 200), "cyan": (20, 200, 210),
    "orange": (245, 130, 20), "gray": (128, 128, 128),
}
SHAPES = ("square", "circle", "triangle", "cross")


def _positive_int(arg: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{arg} must be a positive integer, got {value!r}")
    return value


class RegionEncoder(nn.Module):
    """CNN trunk -> adaptive average pool to ``grid`` x ``grid`` -> 1x1 projection to ``dim``.

    Args:
        backbone: ``small`` (conv + BatchNorm + ReLU layers) or a torchvision model name
            (``resnet18``, ``resnet34``, ``resnet50``, ... or any model with a ``features``
            trunk such as ``vgg11``, ``mobilenet_v3_small``), built with ``weights=None``.
        channels, kernels, strides: output channels, kernel size and stride of each ``small``
            conv layer; padding max(0, (kernel - stride + 1) // 2) makes a stride-s layer divide
            an even size by s, and a kernel equal to its stride cuts the image into patches.
        grid: side of the region grid (L = grid**2 regions).
        dim: width of each region feature.
        coord_channels: append normalised x, y coordinate channels to the input image.
        pos_embedding: add a learned position embedding to each region.
        layer_norm: LayerNorm the learned region features (unit scale: the first dot-product
            attention scores are then not all ~0, and attention leaves its uniform start sooner).
        coord_features: make the last 3 of the ``dim`` features each region's centre (x, y) and
            x^2 + y^2, in cell units from the grid's centre, as Santoro et al. 2017 tag CNN cells
            with coordinates; a bilinear score can then express -|p_j - p|^2 ("near position
            p"), and neighbouring distances differ by >= 1, not by a tiny fraction.

    Shapes: images (B, 3, H, W) uint8 or float in [0, 1] -> regions (B, L, dim), row-major.
    """

    def __init__(self, *, backbone: str = "small", channels: Sequence[int] = (32, 64),
                 kernels: Sequence[int] = (3, 3), strides: Sequence[int] = (1, 2), grid: int = 4,
                 dim: int = 64, coord_channels: bool = True, pos_embedding: bool = True,
                 layer_norm: bool = True, coord_features: bool = False) -> None:
        super().__init__()
        self.grid, self.dim = _positive_int("grid", grid), _positive_int("dim", dim)
        self.coord_channels, self.coord_features = bool(coord_channels), bool(coord_features)
        learned = self.dim - 3 * self.coord_features
        if learned < 1:
            raise ValueError(f"dim must exceed 3 with coord_features=True, got {dim}")
        in_channels = 3 + 2 * self.coord_channels
        if backbone == "small":
            self.trunk, width = _small_trunk(in_channels, channels, kernels, strides)
        else:
            self.trunk, width = _torchvision_trunk(backbone, in_channels)
        self.pool = nn.AdaptiveAvgPool2d(self.grid)
        self.proj = nn.Conv2d(width, learned, kernel_size=1)
        self.pos = nn.Parameter(0.1 * torch.randn(self.num_regions, learned)) if pos_embedding else None
        self.norm = nn.LayerNorm(learned) if layer_norm else nn.Identity()
        centres = torch.arange(self.grid, dtype=torch.float32) - (self.grid - 1) / 2
        cy, cx = torch.meshgrid(centres, centres, indexing="ij")
        xy = torch.stack([cx.flatten(), cy.flatten()], dim=1)  # (L, 2), row-major
        coords = torch.cat([xy, (xy**2).sum(1, keepdim=True)], dim=1)  # (L, 3)
        self.register_buffer("cell_coords", coords, persistent=False)

    @property
    def num_regions(self) -> int:
        return self.grid * self.grid

    def forward(self, images: Tensor) -> Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images
        x = x - 0.5  # centred pixels; BatchNorm in the trunk does the rest
        if self.coord_channels:
            x = torch.cat([x, _coords(x)], dim=1)
        x = self.proj(self.pool(self.trunk(x)))  # (B, dim, grid, grid)
        regions = x.flatten(2).transpose(1, 2)  # (B, L, learned)
        regions = self.norm(regions if self.pos is None else regions + self.pos)
        if not self.coord_features:
            return regions
        coords = self.cell_coords.to(regions.dtype).expand(regions.shape[0], -1, -1)
        return torch.cat([regions, coords], dim=-1)


def _coords(x: Tensor) -> Tensor:
    b, _, h, w = x.shape
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y]).expand(b, 2, h, w)


def _small_trunk(in_channels: int, channels: Sequence[int], kernels: Sequence[int], strides: Sequence[int]
                 ) -> tuple[nn.Module, int]:
    channels, kernels, strides = list(channels), list(kernels), list(strides)
    if not channels or not len(channels) == len(kernels) == len(strides):
        raise ValueError(f"channels, kernels and strides must be non-empty lists of one length, got "
                         f"{channels!r}, {kernels!r} and {strides!r}")
    layers: list[nn.Module] = []
    width = in_channels
    for i, (out, kernel, stride) in enumerate(zip(channels, kernels, strides, strict=True)):
        for arg, value in (("channels", out), ("kernels", kernel), ("strides", stride)):
            _positive_int(f"{arg}[{i}]", value)
        padding = max(0, (kernel - stride + 1) // 2)
        layers += [nn.Conv2d(width, out, kernel, stride=stride, padding=padding, bias=False),
                   nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
        width = out
    return nn.Sequential(*layers), width


def _torchvision_trunk(name: str, in_channels: int) -> tuple[nn.Module, int]:
    """The convolutional part of a torchvision classifier, first conv widened to ``in_channels``."""
    import torchvision

    if name not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(f"backbone must be 'small' or a torchvision classification model, got {name!r}")
    model = torchvision.models.get_model(name, weights=None)
    if hasattr(model, "fc") and hasattr(model, "layer4"):  # ResNet family
        trunk = nn.Sequential(*list(model.children())[:-2])
    elif hasattr(model, "features"):
        trunk = model.features
    else:
        raise ValueError(f"backbone {name!r} has neither a ResNet layout nor a 'features' trunk")
    _widen_first_conv(trunk, in_channels)
    with torch.no_grad():
        width = trunk.eval()(torch.zeros(1, in_channels, 64, 64)).shape[1]
    return trunk.train(), int(width)


def _widen_first_conv(trunk: nn.Module, in_channels: int) -> None:
    parent, attr, conv = next((p, n, c) for p in trunk.modules() for n, c in p.named_children()
                              if isinstance(c, nn.Conv2d))
    if conv.in_channels == in_channels:
        return
    setattr(parent, attr, nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                    conv.padding, bias=conv.bias is not None))


def read_json(path: str | Path, *, what: str) -> object:
    """A parsed JSON file; a missing or malformed file raises ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found (expected {what})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err}); expected {what}") from err


def load_image(path: str | Path, size: int) -> Tensor:
    """One image file as a (3, size, size) uint8 tensor (RGB, bilinear resize)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: image file not found")
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable image ({err})") from err
    return torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).view(size, size, 3).permute(2, 0, 1)


def load_images(paths: Sequence[str | Path], size: int) -> Tensor:
    """(N, 3, size, size) uint8; every file is read (and checked) before anything trains."""
    _positive_int("image_size", size)
    if not paths:
        return torch.zeros(0, 3, size, size, dtype=torch.uint8)
    return torch.stack([load_image(p, size) for p in paths])


def shape_mask(shape: str, size: int) -> Tensor:
    """A (size, size) bool mask of ``shape`` filling a cell with a one-pixel margin.

    At size 6 the cross and the circle coincide; every shape is distinct from size 8 up.
    """
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {list(SHAPES)}, got {shape!r}")
    if size < 6:
        raise ValueError(f"cell size must be >= 6 pixels to draw distinct shapes, got {size}")
    c = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    y, x = torch.meshgrid(c, c, indexing="ij")
    r = (size - 2) / 2  # half-width inside the margin
    if shape == "square":
        return (x.abs() <= r) & (y.abs() <= r)
    if shape == "circle":
        return x**2 + y**2 <= r**2 + 0.3  # corners cut: differs from the square from size 6 up
    if shape == "triangle":  # apex up: the half-width grows linearly from top to bottom
        return (y.abs() <= r) & (x.abs() <= (y + r) / 2 + 0.5)
    arm = max(r / 3, 0.5)  # "cross": a plus sign
    inside = (x.abs() <= r) & (y.abs() <= r)
    return inside & ((x.abs() <= arm) | (y.abs() <= arm))


def render_cells(patches: Tensor, grid: int) -> Tensor:
    """(N, grid * grid, 3, c, c) per-cell patches (row-major) -> (N, 3, grid * c, grid * c) images."""
    n, cells, ch, c, _ = patches.shape
    if cells != grid * grid:
        raise ValueError(f"expected {grid * grid} cells for grid={grid}, got {cells}")
    x = patches.view(n, grid, grid, ch, c, c).permute(0, 3, 1, 4, 2, 5)  # (N, 3, gy, cy, gx, cx)
    return x.reshape(n, ch, grid * c, grid * c)


def unique_images(images: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct images a batch refers to and, per item, its row among them.

    Several questions/captions of one image then share one pass of the CNN.
    """
    rows, inverse = torch.unique(index, return_inverse=True)
    return images[rows], inverse


class ImageGroupedBatchSampler(torch.utils.data.Sampler):
    """Batches of ``batch_size`` items that keep the items of one image together.

    With ``shuffle`` the images are permuted each epoch (``torch.Generator().manual_seed(seed +
    epoch)``, so runs repeat) and their items concatenated before cutting batches; without it the
    items are taken in dataset order (evaluation).
    """

    def __init__(self, image_index: Sequence[int], *, batch_size: int, shuffle: bool, seed: int) -> None:
        self.batch_size = _positive_int("batch_size", batch_size)
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        groups: dict[int, list[int]] = {}
        for item, image in enumerate(image_index):
            groups.setdefault(int(image), []).append(item)
        self.groups = list(groups.values())
        self.size = len(image_index)

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def __iter__(self):
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            self.epoch += 1
            groups = torch.randperm(len(self.groups), generator=gen).tolist()
            order = [i for g in groups for i in self.groups[g]]
        else:
            order = list(range(self.size))
        yield from (order[i:i + self.batch_size] for i in range(0, self.size, self.batch_size))


def split_off(ids: Sequence[int], fraction: float, seed: int) -> set[int]:
    """A seeded ``fraction`` of ``ids`` (at least one, never all) to hold out, e.g. for validation."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {fraction!r}")
    distinct = sorted(set(ids))
    if len(distinct) < 2:
        raise ValueError(f"cannot hold out a validation split from {len(distinct)} image(s)")
    gen = torch.Generator().manual_seed(seed)
    count = min(len(distinct) - 1, max(1, round(fraction * len(distinct))))
    return {distinct[i] for i in torch.randperm(len(distinct), generator=gen)[:count].tolist()}
