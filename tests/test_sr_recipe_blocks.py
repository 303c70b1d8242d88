"""The blocks of BasicSR's / Real-ESRGAN's SR recipes (train_MSRResNet_x4, train_ESRGAN_x4,
train_realesrnet_x4plus, train_realesrgan_x4plus), with their published keys and values, build the
components here unchanged (data roots pointed at small temporary folders)."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from gfpgan.archs import build_network
from gfpgan.data import build_dataset
from gfpgan.data.realesrgan_degradations_torch import RealESRGANDegrader
from gfpgan.losses import build_loss

KERNELS = ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
REALESRGAN_TOP = dict(
    scale=4, gt_usm=True, l1_gt_usm=True, percep_gt_usm=True, gan_gt_usm=False,
    resize_prob=[0.2, 0.7, 0.1], resize_range=[0.15, 1.5], gaussian_noise_prob=0.5, noise_range=[1, 30],
    poisson_scale_range=[0.05, 3], gray_noise_prob=0.4, jpeg_range=[30, 95], second_blur_prob=0.8,
    resize_prob2=[0.3, 0.4, 0.3], resize_range2=[0.3, 1.2], gaussian_noise_prob2=0.5, noise_range2=[1, 25],
    poisson_scale_range2=[0.05, 2.5], gray_noise_prob2=0.4, jpeg_range2=[30, 95], gt_size=256, queue_size=180)
REALESRGAN_TRAIN = dict(
    name='DF2K+OST', type='RealESRGANDataset', io_backend={'type': 'disk'}, blur_kernel_size=21, kernel_list=KERNELS,
    kernel_prob=[0.45, 0.25, 0.12, 0.03, 0.12, 0.03], sinc_prob=0.1, blur_sigma=[0.2, 3], betag_range=[0.5, 4],
    betap_range=[1, 2], blur_kernel_size2=21, kernel_list2=KERNELS, kernel_prob2=[0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    sinc_prob2=0.1, blur_sigma2=[0.2, 1.5], betag_range2=[0.5, 4], betap_range2=[1, 2], final_sinc_prob=0.8,
    gt_size=256, use_hflip=True, use_rot=False, use_shuffle=True, num_worker_per_gpu=5, batch_size_per_gpu=12,
    dataset_enlarge_ratio=1, prefetch_mode=None, phase='train')
ESRGAN_TRAIN = dict(name='DIV2K', type='PairedImageDataset', filename_tmpl='{}', io_backend={'type': 'disk'},
                    gt_size=128, use_flip=True, use_rot=True, use_shuffle=True, num_worker_per_gpu=6,
                    batch_size_per_gpu=16, dataset_enlarge_ratio=100, prefetch_mode=None, phase='train', scale=4)
MSRRESNET_TRAIN = dict(ESRGAN_TRAIN, use_hflip=True)
VAL = dict(name='Set14', type='PairedImageDataset', io_backend={'type': 'disk'}, phase='val', scale=4)


def _folders(tmp_path):
    rng = np.random.default_rng(0)
    for sub in ('hr', 'lr'):
        (tmp_path / sub).mkdir()
    for i in range(2):
        lr = (rng.random((40, 36, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / 'lr' / f'{i:04d}.png'), lr)
        cv2.imwrite(str(tmp_path / 'hr' / f'{i:04d}.png'), cv2.resize(lr, (144, 160), interpolation=cv2.INTER_CUBIC))
    (tmp_path / 'meta_info_GT.txt').write_text('0001.png (160,144,3)\n0000.png (160,144,3)\n')
    return str(tmp_path / 'hr'), str(tmp_path / 'lr')


def test_network_blocks_build_at_release_size():
    blocks = [
        dict(type='MSRResNet', num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4),
        dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23),  # ESRGAN: scale left to default
        dict(type='VGGStyleDiscriminator', num_in_ch=3, num_feat=64),
        dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32),
        dict(type='UNetDiscriminatorSN', num_in_ch=3, num_feat=64, skip_connection=True),
    ]
    with torch.device('meta'):
        nets = [build_network(b) for b in blocks]
    assert nets[1].scale == 4 and nets[2].input_size == 128  # = the recipe's gt_size


def test_dataset_blocks_build(tmp_path):
    hr, lr = _folders(tmp_path)
    meta = str(tmp_path / 'meta_info_GT.txt')
    msr = build_dataset(dict(MSRRESNET_TRAIN, dataroot_gt=hr, dataroot_lq=lr, meta_info_file=meta))
    assert msr[0]['gt_path'].endswith('0001.png') and msr[0]['gt'].shape == (3, 128, 128)
    esr = build_dataset(dict(ESRGAN_TRAIN, dataroot_gt=hr, dataroot_lq=lr))
    assert len(esr) == 2 and esr[1]['lq'].shape == (3, 32, 32)
    val = build_dataset(dict(VAL, dataroot_gt=hr, dataroot_lq=lr))[0]
    assert val['gt'].shape == (3, 160, 144) and val['lq'].shape == (3, 40, 36)
    (tmp_path / 'meta_realesrgan.txt').write_text('hr/0000.png\nhr/0001.png\n')
    real = build_dataset(dict(REALESRGAN_TRAIN, dataroot_gt=str(tmp_path),
                              meta_info=str(tmp_path / 'meta_realesrgan.txt')))
    s = real[0]
    assert s['gt'].shape == (3, 400, 400) and s['kernel1'].shape == s['sinc_kernel'].shape == (21, 21)


def test_top_level_degradation_keys_drive_the_degrader():
    degrader = RealESRGANDegrader(REALESRGAN_TOP)  # the model passes its whole option dict
    assert degrader.scale == 4 and degrader.opt['noise_range2'] == [1, 25]
    gt = torch.rand(2, 3, 64, 64)
    k = torch.zeros(2, 21, 21)
    k[:, 10, 10] = 1
    lq = degrader.degrade(gt, k, k, k, degrader.draw(2, torch.Generator().manual_seed(0)))
    assert lq.shape == (2, 3, 16, 16)


def test_loss_blocks_build():
    assert build_loss(dict(type='L1Loss', loss_weight=1e-2, reduction='mean')).loss_weight == 1e-2
    gan = build_loss(dict(type='GANLoss', gan_type='vanilla', real_label_val=1.0, fake_label_val=0.0, loss_weight=0.1))
    assert float(gan(torch.zeros(1, 1, 4, 4), True, is_disc=False)) > 0
