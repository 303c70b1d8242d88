"""`python -m gfpgan.demo`: a complete training run on data that needs no download, in about a minute on 2 CPU cores.

It trains a small restorer on degraded crops of scikit-image's sample photos through the same
pipeline as every other option file (datasets, model, losses, metrics, checkpoints, tensorboard),
and writes everything to `experiments/demo_restoration/`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Sequence

DEMO_OPTIONS = """\
# The README demo: a small residual CNN learns to undo blur + downsampling + noise + JPEG.
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

network_g:
  type: ResidualCNN
  num_feat: 32
  num_block: 4

train:
  optim_g: {type: Adam, lr: 2e-3, betas: [0.9, 0.99]}
  scheduler: {type: MultiStepLR, milestones: [200], gamma: 0.5}
  total_iter: 300
  warmup_iter: -1
  ema_decay: 0.99
  pixel_opt: {type: L1Loss, loss_weight: 1.0, reduction: mean}

val:
  val_freq: 100
  save_img: true
  metrics:
    psnr: {type: calculate_psnr, crop_border: 0, test_y_channel: false}
    ssim: {type: calculate_ssim, crop_border: 0, test_y_channel: false}

logger:
  print_freq: 50
  save_checkpoint_freq: 100
  use_tb_logger: true
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=None, help='override train.total_iter')
    parser.add_argument('--print-options', action='store_true', help='print the embedded option file and exit')
    args = parser.parse_args(argv)
    if args.print_options:
        print(DEMO_OPTIONS)
        return 0
    from gfpgan.train import main as train_main

    with tempfile.TemporaryDirectory() as tmp:
        opt_path = os.path.join(tmp, 'demo_restoration.yml')
        with open(opt_path, 'w') as f:
            f.write(DEMO_OPTIONS)
        train_argv = ['-opt', opt_path]
        if args.iters:
            train_argv += ['--force_yml', f'train:total_iter={args.iters}']
        code = train_main(train_argv)
    if code == 0:
        exp = os.path.join(os.getcwd(), 'experiments', 'demo_restoration')
        print(
            f'\nDemo finished: checkpoints in {exp}/models, validation images in {exp}/visualization, '
            f'log in {exp}/train_*.log, tensorboard: tensorboard --logdir tb_logger',
            flush=True,
        )
    return code


if __name__ == '__main__':
    sys.exit(main())
