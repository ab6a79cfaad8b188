"""MODNet portrait matting network, written for segkit from the paper and the
public architecture description.

Reference: Ke et al., "MODNet: Real-Time Trimap-Free Portrait Matting via
Objective Decomposition", AAAI 2022. Three branches share one MobileNetV2
encoder: a low-resolution *semantic* branch (1/32 features re-weighted by an
SE block, upsampled to 1/8), a high-resolution *detail* branch (1/2 and 1/4
features plus the down-sampled image) and a *fusion* branch that merges both
into the matte. Normalisation in the branches is IBNorm: the first half of the
channels go through BatchNorm, the rest through (parameter-free) InstanceNorm.

Module and attribute names are not free choices: they reproduce the layout of
the official checkpoints (``modnet_photographic_portrait_matting.ckpt`` and
``modnet_webcam_portrait_matting.ckpt``) so that their state dict, once the
``module.`` prefix of ``nn.DataParallel`` is stripped, loads with
``strict=True``. The same encoder object is registered twice, as ``backbone``
and as ``lr_branch.backbone``, because the checkpoints store it under both
names (751 entries, 312 of them aliases). The training-only heads
``lr_branch.conv_lr`` and ``hr_branch.conv_hr`` exist for the same reason; the
inference forward pass never calls them.

Inference preprocessing (the reference demo ``demo/image_matting/colab/
inference.py`` and ``onnx/inference_onnx.py`` of ZHKKKe/MODNet; the core
implements it from registry data, this module takes a prepared tensor):

* RGB, ``x / 255`` then ``(x - 0.5) / 0.5``, so values lie in [-1, 1];
  layout N x 3 x H x W, float32.
* ``ref_size = 512``. The image is rescaled only when it is entirely smaller
  (``max(h, w) < 512``) or entirely larger (``min(h, w) > 512``) than 512.
  Then the short side becomes 512 and the long side
  ``int(long / short * 512)`` (truncated), keeping the aspect ratio; when
  ``w == h`` both become 512. Otherwise (``min(h, w) <= 512 <= max(h, w)``)
  the size is kept as it is.
* Either way both sides are then rounded DOWN to multiples of 32
  (``side - side % 32``); the network needs them, since the encoder halves
  the resolution five times. (A kept side under 32 would become 0; callers
  must guard against that.)
* The reference resizes with area interpolation (``F.interpolate(mode="area")``).
  segkit shrinks the photo with Pillow's box filter (the same average for
  whole-number ratios) and resizes the matte back bilinearly; see the
  registry's ``short_side_32`` rule and ``output="matte"``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Encoder channels at strides 2, 4 and 32 (the taps MODNet uses).
ENC2X_CHANNELS, ENC4X_CHANNELS, ENC32X_CHANNELS = 16, 24, 1280
#: Channels of the 1/16 and 1/8 semantic features (MobileNetV2's stride-16
#: and stride-8 widths).
LR16X_CHANNELS, LR8X_CHANNELS = 96, 32
#: Width of the detail and fusion branches (``hr_channels`` upstream).
HR_CHANNELS = 32

# MobileNetV2 stages: (expansion, out_channels, repeats, first_stride).
_MOBILENETV2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
_STEM_CHANNELS = 32


def _up2(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 upsampling, as every skip connection in MODNet uses."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
             relu6: bool = True) -> list[nn.Module]:
    """Bias-free conv + BatchNorm (+ ReLU6): the MobileNetV2 building unit."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu6:
        layers.append(nn.ReLU6(inplace=True))
    return layers


class InvertedResidual(nn.Module):
    """MobileNetV2 block: (expand 1x1) -> depthwise 3x3 -> linear 1x1 projection,
    with an identity shortcut when the shape is unchanged."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        layers = [] if expansion == 1 else _conv_bn(cin, hidden, 1)
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden)
        layers += _conv_bn(hidden, cout, 1, relu6=False)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class _MobileNetV2Trunk(nn.Module):
    """Holds ``features`` (19 stages, no classifier) so the keys read
    ``backbone.model.features.<i>...`` like the checkpoint's."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        stages: list[nn.Module] = [nn.Sequential(*_conv_bn(in_channels, _STEM_CHANNELS, 3, 2))]
        cin = _STEM_CHANNELS
        for expansion, cout, repeats, first_stride in _MOBILENETV2_STAGES:
            for i in range(repeats):
                stages.append(InvertedResidual(cin, cout, first_stride if i == 0 else 1, expansion))
                cin = cout
        stages.append(nn.Sequential(*_conv_bn(cin, ENC32X_CHANNELS, 1)))
        self.features = nn.Sequential(*stages)


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 (width 1.0) returning the stride-2, stride-4 and stride-32
    feature maps; the intermediate ones are not used by MODNet."""

    # Index of the last stage of each tapped resolution.
    _TAPS = {1: "enc2x", 3: "enc4x", 18: "enc32x"}

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.model = _MobileNetV2Trunk(in_channels)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        taps = {}
        for index, stage in enumerate(self.model.features):
            x = stage(x)
            if index in self._TAPS:
                taps[self._TAPS[index]] = x
        return taps


class IBNorm(nn.Module):
    """BatchNorm on the first ``channels // 2`` channels, InstanceNorm (no
    affine, no running stats) on the rest: batch statistics keep semantics
    stable while per-image statistics adapt to each photo's contrast."""

    def __init__(self, channels: int):
        super().__init__()
        self.split = channels // 2
        self.bnorm = nn.BatchNorm2d(self.split)
        self.inorm = nn.InstanceNorm2d(channels - self.split, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head, tail = x[:, : self.split], x[:, self.split:]
        return torch.cat((self.bnorm(head.contiguous()), self.inorm(tail.contiguous())), dim=1)


class ConvIBNormReLU(nn.Module):
    """Biased conv with "same" padding, then optionally IBNorm and ReLU. Wrapped
    in ``layers`` (conv at 0, IBNorm at 1) to match the checkpoint keys."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1,
                 norm: bool = True, relu: bool = True):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2)]
        if norm:
            layers.append(IBNorm(cout))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _head(cin: int, cout: int, kernel: int, stride: int = 1) -> ConvIBNormReLU:
    """A plain conv output layer (no norm, no activation)."""
    return ConvIBNormReLU(cin, cout, kernel, stride, norm=False, relu=False)


class SEBlock(nn.Module):
    """Squeeze-and-excitation on the 1/32 features: a global summary gates each
    channel, which lets the semantic branch focus on the person."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc(self.pool(x).flatten(1))
        return x * weights[:, :, None, None]


class LRBranch(nn.Module):
    """Semantic branch: SE-weighted 1/32 features decoded to 1/8 (``lr8x``)."""

    def __init__(self, backbone: MobileNetV2Encoder):
        super().__init__()
        self.backbone = backbone
        self.se_block = SEBlock(ENC32X_CHANNELS)
        self.conv_lr16x = ConvIBNormReLU(ENC32X_CHANNELS, LR16X_CHANNELS, 5)
        self.conv_lr8x = ConvIBNormReLU(LR16X_CHANNELS, LR8X_CHANNELS, 5)
        self.conv_lr = _head(LR8X_CHANNELS, 1, 3, stride=2)  # training-only semantic head

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        enc = self.backbone(img)
        lr16x = self.conv_lr16x(_up2(self.se_block(enc["enc32x"])))
        return self.conv_lr8x(_up2(lr16x)), enc


class HRBranch(nn.Module):
    """Detail branch: fuses encoder skips, the image and the semantic features
    at 1/4 and 1/2 resolution, where hair and edges are resolved."""

    def __init__(self, hr: int = HR_CHANNELS):
        super().__init__()
        self.tohr_enc2x = ConvIBNormReLU(ENC2X_CHANNELS, hr, 1)
        self.conv_enc2x = ConvIBNormReLU(hr + 3, hr, 3, stride=2)
        self.tohr_enc4x = ConvIBNormReLU(ENC4X_CHANNELS, hr, 1)
        self.conv_enc4x = ConvIBNormReLU(2 * hr, 2 * hr, 3)
        self.conv_hr4x = nn.Sequential(
            ConvIBNormReLU(3 * hr + 3, 2 * hr, 3),
            ConvIBNormReLU(2 * hr, 2 * hr, 3),
            ConvIBNormReLU(2 * hr, hr, 3),
        )
        self.conv_hr2x = nn.Sequential(
            ConvIBNormReLU(2 * hr, 2 * hr, 3),
            ConvIBNormReLU(2 * hr, hr, 3),
            ConvIBNormReLU(hr, hr, 3),
            ConvIBNormReLU(hr, hr, 3),
        )
        # Training-only detail head.
        self.conv_hr = nn.Sequential(ConvIBNormReLU(hr + 3, hr, 3), _head(hr, 1, 1))

    def forward(self, img: torch.Tensor, enc2x: torch.Tensor, enc4x: torch.Tensor,
                lr8x: torch.Tensor) -> torch.Tensor:
        img2x = F.interpolate(img, scale_factor=1 / 2, mode="bilinear", align_corners=False)
        img4x = F.interpolate(img, scale_factor=1 / 4, mode="bilinear", align_corners=False)
        enc2x = self.tohr_enc2x(enc2x)
        hr4x = self.conv_enc2x(torch.cat((img2x, enc2x), dim=1))
        hr4x = self.conv_enc4x(torch.cat((hr4x, self.tohr_enc4x(enc4x)), dim=1))
        hr4x = self.conv_hr4x(torch.cat((hr4x, _up2(lr8x), img4x), dim=1))
        return self.conv_hr2x(torch.cat((_up2(hr4x), enc2x), dim=1))


class FusionBranch(nn.Module):
    """Fusion branch: semantic features brought to 1/2, merged with the detail
    features, then refined at full resolution with the image."""

    def __init__(self, hr: int = HR_CHANNELS):
        super().__init__()
        self.conv_lr4x = ConvIBNormReLU(LR8X_CHANNELS, hr, 5)
        self.conv_f2x = ConvIBNormReLU(2 * hr, hr, 3)
        self.conv_f = nn.Sequential(ConvIBNormReLU(hr + 3, hr // 2, 3), _head(hr // 2, 1, 1))

    def forward(self, img: torch.Tensor, lr8x: torch.Tensor, hr2x: torch.Tensor) -> torch.Tensor:
        lr2x = _up2(self.conv_lr4x(_up2(lr8x)))
        f2x = self.conv_f2x(torch.cat((lr2x, hr2x), dim=1))
        return torch.sigmoid(self.conv_f(torch.cat((_up2(f2x), img), dim=1)))


class MODNet(nn.Module):
    """MODNet for inference: ``forward(x)`` maps an N x 3 x H x W image in
    [-1, 1] (H, W multiples of 32) to the N x 1 x H x W matte in [0, 1].

    Call ``.eval()`` first: IBNorm's BatchNorm half must use the checkpoint's
    running statistics. Weights come from :mod:`segkit.modnet_convert`; a
    fresh instance is randomly initialised as upstream does before training."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.backbone = MobileNetV2Encoder(in_channels)
        self.lr_branch = LRBranch(self.backbone)
        self.hr_branch = HRBranch()
        self.f_branch = FusionBranch()
        self._init_weights()

    def _init_weights(self) -> None:
        """He-uniform convs, zero biases, unit BatchNorm: keeps activations of
        order one through the 19 encoder stages. PyTorch's default init makes
        them vanish, and InstanceNorm of near-constant maps then amplifies
        float32 rounding, which would make random-weight tests meaningless."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=0, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        lr8x, enc = self.lr_branch(img)
        hr2x = self.hr_branch(img, enc["enc2x"], enc["enc4x"], lr8x)
        return self.f_branch(img, lr8x, hr2x)
