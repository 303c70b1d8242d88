"""GFPGANer: restore every face of an image with a GFPGAN-family generator and paste it back.

Same call as upstream (`enhance(img, has_aligned, only_center_face, paste_back, weight)` ->
`(cropped_faces, restored_faces, restored_img)`), with these differences:
- `weight` is real: each restored face is `weight * restored + (1 - weight) * input crop` (1 = the
  network's output only, 0 = the input unchanged). Upstream accepted it and ignored it; pass
  `weight=1` for upstream's output.
- all faces of an image go through the network in one batch (`batch_size` at most);
- detection works offline (dlib) and weight files are looked up as `gfpgan.face.weights` says (upstream's
  folders included) and downloaded only into an absolute folder;
- the generator runs with its stored noise (`randomize_noise=False`), so a result is reproducible.
"""
from __future__ import annotations

import inspect
import os
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gfpgan.archs import build_network
from gfpgan.face.face_restore_helper import FaceRestoreHelper
from gfpgan.face.paste import paste_faces_torch
from gfpgan.face.weights import load_file_from_url
from gfpgan.inference_speed import prepare_for_inference
from gfpgan.utils.checkpoint_io import extract_state_dict, load_checkpoint, load_weights
from gfpgan.utils.image_io import to_bgr

RELEASES = 'https://github.com/TencentARC/GFPGAN/releases/download'
# -v version -> (arch, channel_multiplier, URL); the file name is the URL's last part.
MODEL_VERSIONS: dict[str, tuple[str, int, str]] = {
    '1': ('original', 1, f'{RELEASES}/v0.1.0/GFPGANv1.pth'),
    '1.2': ('clean', 2, f'{RELEASES}/v0.2.0/GFPGANCleanv1-NoCE-C2.pth'),
    '1.3': ('clean', 2, f'{RELEASES}/v1.3.0/GFPGANv1.3.pth'),
    '1.4': ('clean', 2, f'{RELEASES}/v1.3.0/GFPGANv1.4.pth'),
    'RestoreFormer': ('RestoreFormer', 2, f'{RELEASES}/v1.3.4/RestoreFormer.pth'),
}
ARCH_TYPES = {'clean': 'GFPGANv1Clean', 'original': 'GFPGANv1', 'bilinear': 'GFPGANBilinear',
              'RestoreFormer': 'RestoreFormer'}


def arch_options(arch: str, channel_multiplier: int = 2) -> dict[str, Any]:
    """The network options of upstream's release files for `arch` ('clean', 'original', 'bilinear', 'RestoreFormer')."""
    if arch not in ARCH_TYPES:
        raise ValueError(f"Unknown arch {arch!r}; choose one of {', '.join(ARCH_TYPES)}.")
    if arch == 'RestoreFormer':
        return {'type': 'RestoreFormer'}
    opt = dict(type=ARCH_TYPES[arch], out_size=512, num_style_feat=512, channel_multiplier=channel_multiplier,
               decoder_load_path=None, fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True,
               narrow=1, sft_half=True)
    if arch in ('original', 'bilinear'):
        opt['lr_mlp'] = 0.01
    return opt


def infer_clean_options(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Read GFPGANv1Clean's size options off a state dict (release and small test checkpoints alike).

    out_size from the number of per-level noise buffers, narrow from the 4x4 constant (512 * narrow
    channels), num_style_feat / num_mlp from the mapping network, channel_multiplier from the width of
    the last decoder level, different_w from the latent projection, sft_half from the SFT width.
    """
    sd = state_dict
    try:
        n_noise = sum(1 for k in sd if k.startswith('stylegan_decoder.noises.noise'))
        log_size = (n_noise + 3) // 2
        out_size = 2 ** log_size
        narrow = sd['stylegan_decoder.constant_input.weight'].shape[1] / 512
        style_keys = [k for k in sd if k.startswith('stylegan_decoder.style_mlp.') and k.endswith('.weight')]
        num_style_feat = sd[style_keys[0]].shape[0]
        last_rgb = sd[f'stylegan_decoder.to_rgbs.{log_size - 3}.modulated_conv.weight'].shape[2]
        base = {64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}.get(out_size)
        channel_multiplier = round(last_rgb / (base * narrow)) if base else 2
        num_latent = sd['final_linear.weight'].shape[0] // num_style_feat
        sft_width = sd['condition_scale.0.2.weight'].shape[0]
        up0_width = sd['conv_body_up.0.conv2.weight'].shape[0]
    except (KeyError, IndexError) as err:
        raise KeyError(f'Not a GFPGANv1Clean state dict (missing {err}); pass net_opt= with its options.') from err
    return dict(type='GFPGANv1Clean', out_size=out_size, num_style_feat=num_style_feat,
                channel_multiplier=channel_multiplier, decoder_load_path=None, fix_decoder=False,
                num_mlp=len(style_keys), input_is_latent=True, different_w=num_latent > 1,
                narrow=narrow if narrow != int(narrow) else int(narrow), sft_half=sft_width == up0_width)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(device)


def _resolve_dtype(dtype: str | torch.dtype | None, half: bool, device: torch.device) -> torch.dtype:
    names = {'fp32': torch.float32, 'float32': torch.float32, 'fp16': torch.float16, 'float16': torch.float16,
             'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16}
    if isinstance(dtype, str):
        if dtype not in names:
            raise ValueError(f"Unknown dtype {dtype!r}; choose one of {', '.join(names)}.")
        dtype = names[dtype]
    dtype = dtype or (torch.float16 if half else torch.float32)
    if dtype == torch.float16 and device.type == 'cpu':
        raise ValueError('fp16 inference needs a GPU; on CPU use dtype=bf16 or the default fp32.')
    return dtype


class GFPGANer:
    """Face restoration with a GFPGAN-family generator.

    Args:
        model_path: release-style checkpoint (`params_ema`, else `params`, else a bare state dict), or
            its URL (looked up in the weight folders, upstream's included, else fetched into the weights
            folder once; see `gfpgan.face.weights`).
        upscale: output size / input size of `enhance`'s whole image.
        arch: 'clean' (v1.2-v1.4), 'original' (v1), 'bilinear' or 'RestoreFormer'.
        channel_multiplier: 2 for the clean releases, 1 for v1.
        bg_upsampler: object with `enhance(img, outscale=...) -> (img, _)` (e.g. `BackgroundUpsampler`);
            None enlarges the background with a plain Lanczos resize.
        device: 'cpu', 'cuda', 'cuda:1'...; None picks CUDA when present.
        half / dtype: run the generator in fp16 (`half=True`, GPU only) or `dtype='bf16'`.
        channels_last: NHWC layout; None turns it on for the clean generators (faster, same output).
        compile: `torch.compile` the generator (see `gfpgan.inference_speed.prepare_for_inference`);
            the first batch of each size compiles (slow), later ones run faster.
        net_opt: network options overriding the arch's release defaults (for 'clean' they are read
            off the checkpoint, so small or narrow clean generators load without options).
        net: an already-built generator (then `model_path` may be None).
        detector: 'dlib' (offline), 'retinaface', or a `FaceDetector`.
        batch_size: faces per network call.
        max_output_megapixels: refuse whole images whose output would be larger (memory guard).
        use_parse: blend with a ParseNet face mask (`parsing_parsenet.pth` in the weights folder, downloaded
            when allowed) instead of the feathered crop square.
        paste_on_device: warp and blend the restored faces where they were restored
            (`gfpgan.face.paste.paste_faces_torch`), so a photo comes back in one transfer; None turns
            it on for CUDA. On CPU the OpenCV path (`paste_face`) stays the default.
    """

    def __init__(self, model_path: str | os.PathLike | None, upscale: float = 2, arch: str = 'clean',
                 channel_multiplier: int = 2, bg_upsampler: Any = None, device: str | torch.device | None = None,
                 *, half: bool = False, dtype: str | torch.dtype | None = None, net_opt: dict | None = None,
                 net: nn.Module | None = None, detector: Any = 'dlib', weights_dir: str | None = None,
                 face_size: int = 512, batch_size: int = 8, randomize_noise: bool = False,
                 max_output_megapixels: float = 100.0, use_parse: bool = False,
                 channels_last: bool | None = None, compile: bool = False,
                 paste_on_device: bool | None = None) -> None:
        self.upscale = upscale
        self.bg_upsampler = bg_upsampler
        self.device = _resolve_device(device)
        self.dtype = _resolve_dtype(dtype, half, self.device)
        self.face_size = face_size
        self.batch_size = batch_size
        self.max_output_megapixels = max_output_megapixels
        self.paste_on_device = self.device.type == 'cuda' if paste_on_device is None else paste_on_device
        if net is None:
            if str(model_path).startswith(('https://', 'http://')):  # upstream accepted release URLs here
                model_path = load_file_from_url(str(model_path), weights_dir)
            net, opt = self._build(model_path, arch, channel_multiplier, net_opt)
        else:
            opt = {'out_size': getattr(net, 'out_size', None) or (net_opt or {}).get('out_size')}
            if not opt['out_size']:
                try:  # a clean generator tells its size through its state dict
                    opt['out_size'] = infer_clean_options(net.state_dict())['out_size']
                except KeyError:
                    opt['out_size'] = face_size
        self.gfpgan = net.eval().requires_grad_(False).to(self.device, self.dtype)
        self.out_size = int(opt.get('out_size') or opt.get('resolution') or face_size)
        params = inspect.signature(self.gfpgan.forward).parameters
        takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params.values())
        self._forward_kwargs = {k: v for k, v in (('return_rgb', False), ('randomize_noise', randomize_noise))
                                if k in params or takes_kwargs}
        self._generator = prepare_for_inference(self.gfpgan, device=self.device, dtype=self.dtype,
                                                channels_last=channels_last, compile=compile)
        parser = None
        if use_parse:
            from gfpgan.face.parsing import FaceParser

            parser = FaceParser(weights_folder=weights_dir, device=self.device)
        self.face_helper = FaceRestoreHelper(upscale, face_size=face_size, detector=detector,
                                             weights_folder=weights_dir, parser=parser)

    @staticmethod
    def _build(model_path, arch: str, channel_multiplier: int, net_opt: dict | None) -> tuple[nn.Module, dict]:
        if model_path is None:
            raise ValueError('GFPGANer needs model_path (a checkpoint file) or net= (a built generator).')
        ckpt = load_checkpoint(model_path)
        opt = arch_options(arch, channel_multiplier)
        if arch == 'clean' and not net_opt:
            opt = infer_clean_options(extract_state_dict(ckpt, 'params_ema', str(model_path)))
        opt.update(net_opt or {})
        net = build_network(opt, what=f'generator for {model_path}')
        try:
            load_weights(net, ckpt, param_key='params_ema', strict=True)
        except (RuntimeError, KeyError, TypeError) as err:
            raise RuntimeError(f'{model_path} (arch {arch!r}): {err}') from err
        return net, opt

    @torch.no_grad()
    def restore_faces(self, faces: list[np.ndarray], weight: float = 1.0) -> list[np.ndarray]:
        """Restore aligned BGR uint8 crops (any square size) in batches; same size out as in.

        Crops are resized to the network's `out_size` and the result back, so a 512 crop works with
        a generator of another size.
        """
        return [np.ascontiguousarray(img) for img in self._restore_on_device(faces, weight).cpu().numpy()]

    def _restore_on_device(self, faces: list[np.ndarray], weight: float) -> torch.Tensor:
        """`restore_faces` as one (N, S, S, 3) BGR uint8 tensor on the device."""
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f'weight must be in [0, 1] (1 = restored face only, 0 = input), got {weight}.')
        out: list[torch.Tensor] = []
        for start in range(0, len(faces), self.batch_size):
            chunk = faces[start:start + self.batch_size]
            size = chunk[0].shape[0]
            x = torch.from_numpy(np.stack([f[:, :, ::-1] for f in chunk]).copy()).permute(0, 3, 1, 2)
            x = x.to(self.device, torch.float32) / 127.5 - 1.0
            net_in = x if size == self.out_size else F.interpolate(x, size=self.out_size, mode='bilinear',
                                                                   antialias=True, align_corners=False)
            y = self._generator(net_in, **self._forward_kwargs)
            y = (y[0] if isinstance(y, (tuple, list)) else y).float()
            if size != self.out_size:
                y = F.interpolate(y, size=size, mode='bilinear', antialias=True, align_corners=False)
            y = weight * y.clamp(-1, 1) + (1.0 - weight) * x
            out.append(((y + 1.0) * 127.5).round().clamp(0, 255).byte().flip(1).permute(0, 2, 3, 1))
        return torch.cat(out)

    def check_size(self, img: np.ndarray) -> None:
        """Raise a clear error if the enlarged image would exceed `max_output_megapixels`."""
        h, w = img.shape[:2]
        out_mp = h * w * self.upscale ** 2 / 1e6
        if out_mp > self.max_output_megapixels:
            raise ValueError(
                f'{w}x{h} image upscaled {self.upscale}x would be {round(w * self.upscale)}x{round(h * self.upscale)} '
                f'({out_mp:.0f} Mpx), over the {self.max_output_megapixels:g} Mpx limit; use a smaller upscale '
                'or raise max_output_megapixels (--max_megapixels).')

    @torch.no_grad()
    def enhance(self, img: np.ndarray, has_aligned: bool = False, only_center_face: bool = False,
                paste_back: bool = True, weight: float = 1.0):
        """Restore the faces of a BGR image; returns `(cropped_faces, restored_faces, restored_img)`.

        `has_aligned`: `img` is already an aligned face crop (resized to `face_size`); `restored_img`
        is then None, as it is with `paste_back=False`. `weight` blends each restored face with its
        input crop: 1 keeps only the network's output, 0 the input (see the module docstring).
        """
        helper = self.face_helper
        helper.clean_all()
        img = to_bgr(img)
        if has_aligned:
            face = cv2.resize(img, (self.face_size, self.face_size), interpolation=cv2.INTER_LINEAR)
            helper.cropped_faces = [face]
        else:
            self.check_size(img)
            helper.read_image(img)
            helper.get_face_landmarks_5(only_center_face=only_center_face)
            helper.align_warp_face()
        restored = self._restore_on_device(helper.cropped_faces, weight) if helper.cropped_faces else None
        helper.restored_faces = [] if restored is None else list(restored.cpu().numpy())
        if has_aligned or not paste_back:
            return helper.cropped_faces, helper.restored_faces, None
        return helper.cropped_faces, helper.restored_faces, self.paste_back(helper, img, restored)

    def paste_back(self, helper: FaceRestoreHelper, img: np.ndarray,
                   restored: torch.Tensor | None = None) -> np.ndarray:
        """Blend `helper`'s restored faces into `img` enlarged `upscale` times (by `bg_upsampler` if set).

        With `paste_on_device` the faces are warped and blended on the device (one transfer back);
        `restored` is the device tensor of `helper.restored_faces` when the caller still holds it.
        """
        background = None
        if self.bg_upsampler is not None:
            background = self.bg_upsampler.enhance(img, outscale=self.upscale)[0]
        helper.get_inverse_affine()
        if not self.paste_on_device or not helper.restored_faces:
            return helper.paste_faces_to_input_image(upsample_img=background)
        if restored is None:
            restored = torch.from_numpy(np.stack(helper.restored_faces)).to(self.device)
        out_h, out_w = helper.upscaled_size()
        if background is None or background.shape[:2] != (out_h, out_w):
            background = cv2.resize(img if background is None else background, (out_w, out_h),
                                    interpolation=cv2.INTER_LANCZOS4)
        masks = None
        if helper.parser is not None:
            masks = torch.from_numpy(np.stack([helper.parser(face) for face in helper.restored_faces]))
        canvas = torch.from_numpy(np.ascontiguousarray(background)).to(self.device)
        return paste_faces_torch(canvas, restored, helper.inverse_affine_matrices, masks).cpu().numpy()

    def enhance_video(self, src: str | os.PathLike, dst: str | os.PathLike, *, weight: float = 1.0,
                      only_center_face: bool = False, progress: Any = None, **options: Any):
        """Restore the faces of video `src` into `dst`, tracked and smoothed over time; see `gfpgan.video`.

        `options` are `gfpgan.video.restorer.VideoOptions` fields; `progress` is True (tqdm bars) or a
        callable `(stage, done, total)` (raising in it cancels; nothing is left behind). Also writes
        `dst`'s `.faces.json` (`NAME.faces.json`); returns a `gfpgan.video.restorer.VideoResult`. Like
        `enhance`, one call at a time per GFPGANer (detection uses its `face_helper`).
        """
        from gfpgan.video.restorer import VideoOptions, VideoRestorer

        unknown = set(options) - set(VideoOptions.names())
        if unknown:
            raise TypeError(f"enhance_video got unknown options {sorted(unknown)}; "
                            f"choose from {', '.join(VideoOptions.names())}.")
        return VideoRestorer(self, VideoOptions(**options)).run(src, dst, weight, only_center_face, progress)
