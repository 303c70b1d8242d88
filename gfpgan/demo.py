"""`python -m gfpgan.demo`: the whole pipeline on data that needs no download, in about two minutes on 2 CPU cores.

Default (`--task gfpgan`): the face of scikit-image's `astronaut()` photo is detected, aligned to the
FFHQ 512 template and given an eye/mouth component file with the project's own offline face tools
(dlib), then a tiny GFPGAN (the full recipe: pyramid, perceptual + style, GAN with lazy R1, facial
component discriminators, identity, EMA) learns to restore it from random degradations.
`--task restoration`: a small pixel-loss restorer on degraded crops of the sample photos (faster).

Everything goes to `experiments/demo_<task>/` (data, checkpoints, validation images, log) and
tensorboard curves to `tb_logger/`.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Sequence

RESTORATION_OPTIONS = """\
# A small residual CNN learns to undo blur + downsampling + noise + JPEG on crops of sample photos.
name: demo_restoration
model_type: RestorationModel
num_gpu: auto
manual_seed: 0
datasets:
  train:
    name: sample_photos
    type: SamplePhotosDataset
    num_samples: 512
    gt_size: 64
    batch_size_per_gpu: 8
    num_worker_per_gpu: 0
  val:
    name: sample_photos_val
    type: SamplePhotosDataset
    num_samples: 12
    gt_size: 96
network_g: {type: ResidualCNN, num_feat: 32, num_block: 4}
train:
  optim_g: {type: Adam, lr: 2e-3, betas: [0.9, 0.99]}
  scheduler: {type: MultiStepLR, milestones: [200], gamma: 0.5}
  total_iter: 300
  ema_decay: 0.99
  pixel_opt: {type: L1Loss, loss_weight: 1.0, reduction: mean}
val:
  val_freq: 100
  save_img: true
  metrics:
    psnr: {type: calculate_psnr, crop_border: 0, test_y_channel: false}
    ssim: {type: calculate_ssim, crop_border: 0, test_y_channel: false}
logger: {print_freq: 50, save_checkpoint_freq: 100, use_tb_logger: true}
"""

GFPGAN_OPTIONS = """\
# Tiny GFPGAN (64 px, narrow networks, random-init VGG and ArcFace) on one aligned face: a smoke run of the
# whole recipe, not a useful model. options/train.yml is the real recipe on FFHQ.
name: demo_gfpgan
model_type: GFPGANModel
num_gpu: auto
manual_seed: 0
datasets:
  train:
    name: astronaut_face
    type: FFHQDegradationDataset
    dataroot_gt: {faces}
    io_backend: {{type: disk}}
    use_hflip: true
    mean: [0.5, 0.5, 0.5]
    std: [0.5, 0.5, 0.5]
    out_size: 64
    blur_kernel_size: 11
    kernel_list: ['iso', 'aniso']
    kernel_prob: [0.5, 0.5]
    blur_sigma: [0.1, 3]
    downsample_range: [1, 4]
    noise_range: [0, 10]
    jpeg_range: [60, 100]
    crop_components: true
    component_path: {components}
    eye_enlarge_ratio: 1.4
    num_worker_per_gpu: 0
    batch_size_per_gpu: 2
    dataset_enlarge_ratio: 100
  val:
    name: astronaut_face_val
    type: FFHQDegradationDataset
    dataroot_gt: {faces}
    io_backend: {{type: disk}}
    use_hflip: false
    seed: 1
    mean: [0.5, 0.5, 0.5]
    std: [0.5, 0.5, 0.5]
    out_size: 64
    blur_kernel_size: 11
    blur_sigma: [1, 2]
    downsample_range: [3, 4]
    noise_range: [3, 6]
    jpeg_range: [70, 80]
network_g:
  type: GFPGANv1Clean
  out_size: 64
  num_style_feat: 64
  channel_multiplier: 1
  num_mlp: 2
  input_is_latent: true
  different_w: true
  narrow: 0.0625
  sft_half: true
network_d: {{type: StyleGAN2Discriminator, out_size: 64, channel_multiplier: 1, narrow: 0.125}}
network_d_left_eye: {{type: FacialComponentDiscriminator}}
network_d_right_eye: {{type: FacialComponentDiscriminator}}
network_d_mouth: {{type: FacialComponentDiscriminator}}
network_identity: {{type: ResNetArcFace, block: IRBlock, layers: [1, 1, 1, 1], use_se: false}}
path:
  ignore_resume_networks: ['network_identity']
train:
  optim_g: {{type: Adam, lr: 2e-3}}
  optim_d: {{type: Adam, lr: 2e-3}}
  optim_component: {{type: Adam, lr: 2e-3}}
  scheduler: {{type: MultiStepLR, milestones: [100000], gamma: 0.5}}
  total_iter: 100
  warmup_iter: -1
  ema_decay: 0.9
  pixel_opt: {{type: L1Loss, loss_weight: 1.0, reduction: mean}}
  L1_opt: {{type: L1Loss, loss_weight: 1, reduction: mean}}
  pyramid_loss_weight: 1
  remove_pyramid_loss: 60
  perceptual_opt:
    type: PerceptualLoss
    layer_weights: {{'conv1_2': 0.1, 'conv2_2': 1}}
    vgg_type: vgg19
    allow_random_vgg: true
    use_input_norm: true
    perceptual_weight: 1e-2
    style_weight: 0.5
    range_norm: true
    criterion: l1
  gan_opt: {{type: GANLoss, gan_type: wgan_softplus, loss_weight: 1e-2}}
  r1_reg_weight: 10
  gan_component_opt: {{type: GANLoss, gan_type: vanilla, loss_weight: 1e-2}}
  comp_style_weight: 2
  identity_weight: 0.1
  net_d_iters: 1
  net_d_init_iters: 0
  net_d_reg_every: 4
val:
  val_freq: 50
  save_img: true
  keep_best: {{metric: psnr}}
  metrics:
    psnr: {{type: calculate_psnr, crop_border: 0, test_y_channel: false}}
    ssim: {{type: calculate_ssim, crop_border: 0, test_y_channel: false}}
logger: {{print_freq: 25, save_checkpoint_freq: 50, use_tb_logger: true}}
find_unused_parameters: true
"""


def prepare_astronaut_face(folder: Path) -> tuple[Path, Path]:
    """Align the astronaut photo's face to the FFHQ 512 template and write it with its component file."""
    import cv2
    import skimage.data

    from gfpgan.face.alignment import estimate_alignment, warp_face
    from gfpgan.face.components import build_component_table, save_component_table
    from gfpgan.face.detection import DlibFaceDetector
    from gfpgan.utils.image_io import imwrite

    faces, components = folder / 'faces', folder / 'eye_mouth_landmarks.pth'
    if (faces / 'astronaut.png').is_file() and components.is_file():
        return faces, components
    photo = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    detector = DlibFaceDetector()
    found = detector.detect(photo)
    if not found:
        raise RuntimeError('The demo found no face in skimage.data.astronaut(); is dlib-bin installed correctly?')
    face = warp_face(photo, estimate_alignment(found[0].landmarks, 512), 512)
    imwrite(face, faces / 'astronaut.png')
    table, _ = build_component_table([faces / 'astronaut.png'], key='name', detector=detector, progress=False)
    save_component_table(table, components)
    return faces, components


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=['gfpgan', 'restoration'], default='gfpgan')
    parser.add_argument('--iters', type=int, default=None, help='override train.total_iter')
    parser.add_argument('--print-options', action='store_true', help='print the option file and exit')
    args = parser.parse_args(argv)
    exp = Path.cwd() / 'experiments' / f'demo_{args.task}'
    if args.task == 'gfpgan':
        data = Path.cwd() / 'experiments' / 'demo_data'
        faces, components = (data / 'faces', data / 'eye_mouth_landmarks.pth')
        if not args.print_options:
            faces, components = prepare_astronaut_face(data)
        options = GFPGAN_OPTIONS.format(faces=faces, components=components)
    else:
        options = RESTORATION_OPTIONS
    if args.print_options:
        print(options)
        return 0
    from gfpgan.train import main as train_main

    with tempfile.TemporaryDirectory() as tmp:
        opt_path = os.path.join(tmp, f'demo_{args.task}.yml')
        Path(opt_path).write_text(options)
        train_argv = ['-opt', opt_path]
        if args.iters:
            train_argv += ['--force_yml', f'train:total_iter={args.iters}']
        code = train_main(train_argv)
    if code == 0:
        print(
            f'\nDemo finished: checkpoints in {exp}/models, validation images in {exp}/visualization, '
            f'log in {exp}/train_*.log; tensorboard --logdir tb_logger',
            flush=True,
        )
    return code


if __name__ == '__main__':
    sys.exit(main())
