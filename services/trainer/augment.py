"""Training augmentation on whole batches, with random parameters drawn per image.

The original study augmented each PIL image on its own (flips, RandomRotation(20),
ColorJitter(0.2, 0.2, 0.2, 0.1), RandomAffine(30, translate=(0.1, 0.1))). Here the same
operations run on a float batch where it lives (GPU or CPU), each image with its own draw —
torchvision.transforms.v2 on a batch tensor would draw one set for the whole batch.

Choices that differ from running the original transforms one image at a time:
- Flips, rotation and affine are one matrix per image and one resampling pass (an affine
  sampling grid + grid_sample, bilinear, zeros outside). torchvision's defaults resample twice
  with nearest neighbour; one bilinear pass loses less detail. The rotation angle and the affine angle
  add up (both symmetric, so torchvision's opposite sign conventions for rotate and affine do
  not change the distribution); translations are whole pixels, as RandomAffine draws them.
- Colour jitter runs before the geometry (it is per-pixel, so only the fill differs): the
  corners uncovered by rotation and translation stay exactly black, and the contrast mean is
  taken over the photo itself rather than over photo plus black corners.
- ColorJitter applies its four sub-operations in a random order per image; here the order is
  fixed: brightness, contrast, saturation, hue (torchvision's listing order).
- Hue is shifted in HSV space, as torchvision's and PIL's adjust_hue do, not by a YIQ rotation
  (cheaper, one 3×3 matrix per image, but it changes saturation and value too). The HSV round
  trip is written in closed form (value and chroma stay, the hue moves), no per-sector gather.

Each operation matches torchvision's functional op on one image with the same parameters
(tests/trainer/test_augment.py).
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from shared.schemas.jobs import AugmentKind

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

# The original study's training transforms.
ROTATION_DEGREES = 20.0
AFFINE_DEGREES = 30.0
TRANSLATE_FRACTION = (0.1, 0.1)  # of width, of height
JITTER = 0.2  # ColorJitter(brightness, contrast, saturation): each factor in 1 ± 0.2
HUE = 0.1  # fraction of a full turn

# "crops": random resized crops along the image, for long leaf strips as for tiles.
CROP_LENGTH = (0.6, 1.0)  # of the longer side: how much of the leaf one view shows
CROP_BREADTH = (0.85, 1.0)  # of the shorter side
CROP_ROTATION_DEGREES = 10.0
CROP_JITTER = 0.2  # brightness, contrast, saturation
CROP_HUE = 0.05
# Test-time views besides the photo and its flips: the first and last TTA_CROP of the longer side.
TTA_CROP = 0.9

# ITU-R 601-2 luma, as torchvision's rgb_to_grayscale.
_LUMA = (0.2989, 0.587, 0.114)


def _per_image(values: torch.Tensor) -> torch.Tensor:
    """N factors shaped to broadcast over N×C×H×W."""
    return values.view(-1, 1, 1, 1)


def _luma(images: torch.Tensor) -> torch.Tensor:
    """N×1×H×W grey levels."""
    r, g, b = images.unbind(1)
    return (r * _LUMA[0] + g * _LUMA[1] + b * _LUMA[2]).unsqueeze(1)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """factor·images + (1 − factor)·other, clamped to [0, 1]."""
    return torch.lerp(other, images, _per_image(factor)).clamp_(0, 1)


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale every pixel by factor[i] (blend with black), clamped to [0, 1]."""
    return (images * _per_image(factor)).clamp_(0, 1)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with its mean grey level."""
    red, green, blue = images.mean(dim=(2, 3)).unbind(1)  # the grey image's mean, without building it
    mean_grey = red * _LUMA[0] + green * _LUMA[1] + blue * _LUMA[2]
    return _blend(images, _per_image(mean_grey), factor)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with its own greyscale version."""
    return _blend(images, _luma(images), factor)


def adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate each image's HSV hue by shift[i] (fraction of a turn), as torchvision's adjust_hue.

    Value (max) and chroma (max − min) stay; each channel then follows from how far, around the
    hue circle, the new hue lies from that channel's primary (red 0, green 2, blue 4 sixths).
    Sectors are picked with 0/1 masks rather than torch.where, several times slower on CPUs.
    """
    r, g, b = images.unbind(1)
    value = torch.maximum(torch.maximum(r, g), b)
    chroma = value - torch.minimum(torch.minimum(r, g), b)
    # Hue in sixths of a turn, scaled by chroma; ties go to red, then green, like torchvision.
    red_max = (value == r).to(images.dtype)
    green_max = (value == g).to(images.dtype) * (1 - red_max)
    blue_max = 1 - red_max - green_max
    hue = red_max * (g - b) + green_max * (b - r + 2 * chroma) + blue_max * (r - g + 4 * chroma)
    # Where chroma is 0 the numerator is 0 as well, and greys stay grey whatever the hue.
    hue = hue / chroma.clamp_min(torch.finfo(images.dtype).tiny) + 6 * shift.view(-1, 1, 1)
    hue = hue - 6 * torch.floor(hue / 6)  # into [0, 6)
    # Hues of the red, green and blue primaries, in sixths of a turn; arange: no host-to-GPU copy.
    primaries = torch.arange(0, 6, 2, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    distance = (hue.unsqueeze(1) - primaries).abs_()
    distance = torch.minimum(distance, 6 - distance)  # around the circle, in [0, 3]
    # channel = min + chroma·clamp(2 − distance, 0, 1)
    #         = (min + 2·chroma) − chroma·clamp(distance, 1, 2), and min + 2·chroma = value + chroma
    chroma = chroma.unsqueeze(1)
    return torch.addcmul(value.unsqueeze(1) + chroma, chroma, distance.clamp_(1, 2), value=-1)


def color_jitter(
    images: torch.Tensor,
    brightness: torch.Tensor,
    contrast: torch.Tensor,
    saturation: torch.Tensor,
    hue: torch.Tensor,
) -> torch.Tensor:
    """torchvision's ColorJitter with given per-image factors, in a fixed order."""
    images = adjust_brightness(images, brightness)
    images = adjust_contrast(images, contrast)
    images = adjust_saturation(images, saturation)
    return adjust_hue(images, hue)


def random_color_jitter(images: torch.Tensor, u: torch.Tensor, strength: float, hue: float) -> torch.Tensor:
    """color_jitter with factors from u (4×N uniforms in [0, 1)): brightness, contrast and
    saturation in 1 ± strength, hue shifted by up to ± hue."""
    brightness, contrast, saturation = (_uniform(row, 1 - strength, 1 + strength) for row in u[:3])
    return color_jitter(images, brightness, contrast, saturation, _uniform(u[3], -hue, hue))


def geometry_matrices(
    flip_h: torch.Tensor,
    flip_v: torch.Tensor,
    angle_degrees: torch.Tensor,
    translate_px: tuple[torch.Tensor, torch.Tensor],
    height: int,
    width: int,
) -> torch.Tensor:
    """N×2×3 matrices for affine_grid: flip, then rotate about the centre, then translate.

    flip_h / flip_v: bool per image; angle: clockwise on screen (torchvision's affine
    convention); translate_px: (dx, dy) in pixels, right and down.
    """
    radians = angle_degrees * (math.pi / 180)
    cos, sin = torch.cos(radians), torch.sin(radians)
    sign_x = 1 - 2 * flip_h.to(cos.dtype)
    sign_y = 1 - 2 * flip_v.to(cos.dtype)
    # Where an output pixel q reads from: F·R⁻¹·(q − t) in centred pixel coordinates, here
    # rescaled to grid_sample's [-1, 1] per axis (hence the aspect ratio on the off-diagonal).
    a = sign_x * cos
    b = sign_x * sin * (height / width)
    c = -sign_y * sin * (width / height)
    d = sign_y * cos
    tx = translate_px[0] * (2 / width)
    ty = translate_px[1] * (2 / height)
    first = torch.stack([a, b, -(a * tx + b * ty)], dim=1)
    second = torch.stack([c, d, -(c * tx + d * ty)], dim=1)
    return torch.stack([first, second], dim=1)


def _sampling_grid(matrices: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """affine_grid(matrices, align_corners=False) by broadcasting: its batched 3-wide matmul is
    about ten times slower on CPUs."""
    device, dtype = matrices.device, matrices.dtype
    xs = (torch.arange(width, device=device, dtype=dtype) * 2 + 1) / width - 1  # pixel centres in [-1, 1]
    ys = (torch.arange(height, device=device, dtype=dtype) * 2 + 1) / height - 1
    grid = torch.empty(len(matrices), height, width, 2, device=device, dtype=dtype)
    for axis in range(2):
        along_x = matrices[:, axis, 0, None] * xs
        along_y = matrices[:, axis, 1, None] * ys + matrices[:, axis, 2, None]
        torch.add(along_x[:, None, :], along_y[:, :, None], out=grid[..., axis])
    return grid


def warp(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Resample every image through its own matrix in one pass; black outside the image."""
    grid = _sampling_grid(matrices.to(images.dtype), images.shape[2], images.shape[3])
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _uniform(u: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * u


def _draw(generator: torch.Generator, count: int, n: int) -> torch.Tensor:
    return torch.rand(count, n, generator=generator, device=generator.device)


def original_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The original study's training augmentation, parameters drawn per image."""
    n, _channels, height, width = images.shape
    u = _draw(generator, 10, n).to(images.device)
    flip_h, flip_v = u[0] < 0.5, u[1] < 0.5
    rotation = _uniform(u[2], -ROTATION_DEGREES, ROTATION_DEGREES)
    angle = rotation + _uniform(u[3], -AFFINE_DEGREES, AFFINE_DEGREES)  # RandomRotation, then RandomAffine
    max_dx, max_dy = TRANSLATE_FRACTION[0] * width, TRANSLATE_FRACTION[1] * height
    dx = torch.round(_uniform(u[4], -max_dx, max_dx))
    dy = torch.round(_uniform(u[5], -max_dy, max_dy))
    images = random_color_jitter(images, u[6:10], JITTER, HUE)
    return warp(images, geometry_matrices(flip_h, flip_v, angle, (dx, dy), height, width))


def crop_matrices(
    matrices: torch.Tensor, scale: tuple[torch.Tensor, torch.Tensor], centre: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """matrices (N×2×3, output → input in [-1, 1] coordinates) followed by a zoom into the window
    of half-extent scale (sx, sy) about centre (cx, cy), all in those coordinates: an output pixel
    then reads from inside that window only."""
    shifted = matrices * torch.stack(scale, dim=1).unsqueeze(2)  # each row by its axis's N×1 scale
    shifted[:, :, 2] += torch.stack(centre, dim=1)
    return shifted


def crops_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random resized crops (CROP_LENGTH of the longer side, CROP_BREADTH of the shorter, anywhere
    inside the image), flips, small rotations and colour jitter, parameters drawn per image."""
    n, _channels, height, width = images.shape
    u = _draw(generator, 11, n).to(images.device)
    along, across = _uniform(u[0], *CROP_LENGTH), _uniform(u[1], *CROP_BREADTH)
    scale_x, scale_y = (along, across) if width >= height else (across, along)
    centre_x, centre_y = (1 - scale_x) * (2 * u[2] - 1), (1 - scale_y) * (2 * u[3] - 1)
    angle = _uniform(u[4], -CROP_ROTATION_DEGREES, CROP_ROTATION_DEGREES)
    zero = torch.zeros_like(angle)
    images = random_color_jitter(images, u[5:9], CROP_JITTER, CROP_HUE)
    matrices = geometry_matrices(u[9] < 0.5, u[10] < 0.5, angle, (zero, zero), height, width)
    return warp(images, crop_matrices(matrices, (scale_x, scale_y), (centre_x, centre_y)))


def tta_views(images: torch.Tensor) -> list[torch.Tensor]:
    """Test-time views of a batch (any value range): the images, their left-right and top-bottom
    mirror images, and their first and last TTA_CROP along the longer side resized back."""
    height, width = images.shape[2], images.shape[3]
    length = round(TTA_CROP * max(height, width))
    if width >= height:
        ends = [images[..., :length], images[..., width - length :]]
    else:
        ends = [images[..., :length, :], images[..., height - length :, :]]
    crops = [F.interpolate(end, size=(height, width), mode="bilinear", align_corners=False) for end in ends]
    if images.is_contiguous(memory_format=torch.channels_last):
        crops = [crop.contiguous(memory_format=torch.channels_last) for crop in crops]
    return [images, images.flip(-1), images.flip(-2), *crops]


def flip(images: torch.Tensor, flip_h: torch.Tensor, flip_v: torch.Tensor) -> torch.Tensor:
    """Mirror left-right where flip_h[i], top-bottom where flip_v[i]; exact, no resampling."""
    images = torch.where(_per_image(flip_h), images.flip(-1), images)
    return torch.where(_per_image(flip_v), images.flip(-2), images)


def flips_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Horizontal and vertical flips, each with probability 0.5 per image."""
    u = _draw(generator, 2, images.shape[0]).to(images.device)
    return flip(images, u[0] < 0.5, u[1] < 0.5)


def no_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return images


AUGMENTS: dict[str, Augment] = {
    "original": original_augment,
    "crops": crops_augment,
    "flips": flips_augment,
    "none": no_augment,
}


def make_augment(kind: AugmentKind) -> Augment:
    """images: float N×3×H×W in [0, 1] on any device; generator on the same device.

    Returns the same shape in [0, 1]; the same generator state gives the same output.
    """
    try:
        return AUGMENTS[kind]
    except KeyError:
        raise ValueError(f"unknown augmentation {kind!r}; choose one of {sorted(AUGMENTS)}") from None
