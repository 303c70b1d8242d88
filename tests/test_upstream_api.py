"""Code written against upstream GFPGAN / BasicSR / facexlib runs unchanged: import paths, arch modules,
dataset attributes, facexlib's FaceRestoreHelper calls, and GFPGANer imported from `gfpgan.utils`.

Each test uses the API the way upstream's tests and downstream scripts do."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from gfpgan.face.alignment import face_template
from gfpgan.face.detection import DetectedFace

REPO = Path(__file__).resolve().parents[1]

# (module, class): every network class of upstream GFPGAN's gfpgan/archs, and BasicSR's networks the recipes use.
UPSTREAM_ARCHS = [
    ('gfpgan.archs.gfpganv1_arch', 'GFPGANv1'),
    ('gfpgan.archs.gfpganv1_arch', 'FacialComponentDiscriminator'),
    ('gfpgan.archs.gfpganv1_arch', 'StyleGAN2GeneratorSFT'),
    ('gfpgan.archs.gfpganv1_clean_arch', 'GFPGANv1Clean'),
    ('gfpgan.archs.gfpganv1_clean_arch', 'StyleGAN2GeneratorCSFT'),
    ('gfpgan.archs.gfpgan_bilinear_arch', 'GFPGANBilinear'),
    ('gfpgan.archs.gfpgan_bilinear_arch', 'StyleGAN2GeneratorBilinearSFT'),
    ('gfpgan.archs.stylegan2_clean_arch', 'StyleGAN2GeneratorClean'),
    ('gfpgan.archs.stylegan2_bilinear_arch', 'StyleGAN2GeneratorBilinear'),
    ('gfpgan.archs.arcface_arch', 'ResNetArcFace'),
    ('gfpgan.archs.restoreformer_arch', 'RestoreFormer'),
    ('gfpgan.archs.stylegan2_arch', 'StyleGAN2Discriminator'),  # basicsr.archs.stylegan2_arch upstream
    ('gfpgan.archs.stylegan2_arch', 'StyleGAN2Generator'),
    ('gfpgan.archs.rrdbnet_arch', 'RRDBNet'),  # basicsr.archs.rrdbnet_arch (Real-ESRGAN background)
    ('gfpgan.archs.vgg_arch', 'VGGFeatureExtractor'),  # basicsr.archs.vgg_arch (perceptual loss)
]


def test_import_gfpgan_utils_stays_light_and_resolves_upstream_names():
    code = ("import sys, gfpgan.utils\n"
            "print([m for m in ('torch', 'cv2', 'gfpgan.restorer', 'gfpgan.face.face_restore_helper', 'gfpgan.archs')"
            " if m in sys.modules])")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '[]'

    import gfpgan.face.face_restore_helper
    import gfpgan.restorer
    import gfpgan.utils
    from gfpgan.utils import FaceRestoreHelper, GFPGANer  # upstream's path (its tests, downstream projects)

    assert GFPGANer is gfpgan.restorer.GFPGANer
    assert FaceRestoreHelper is gfpgan.face.face_restore_helper.FaceRestoreHelper
    with pytest.raises(AttributeError, match="gfpgan.utils' has no attribute 'GFPGANerr'"):
        gfpgan.utils.GFPGANerr  # noqa: B018


@pytest.mark.parametrize('module, name', UPSTREAM_ARCHS, ids=[f'{m.rsplit(".", 1)[1]}.{n}' for m, n in UPSTREAM_ARCHS])
def test_arch_class_at_its_upstream_module_path(module, name):
    from gfpgan.utils.registry import ARCH_REGISTRY

    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, nn.Module)
    if name in ARCH_REGISTRY:  # option files name it by `type`: the same class
        assert ARCH_REGISTRY.get(name) is cls


# ---------------------------------------------------------------- datasets, BasicSR-style attributes
def test_ffhq_dataset_answers_to_upstream_attributes(data_dir):
    from gfpgan.data.ffhq_degradation_dataset import FFHQDegradationDataset

    opt = dict(dataroot_gt=str(data_dir / 'ffhq_512'), io_backend={'type': 'disk'}, use_hflip=True,
               mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], out_size=64, blur_kernel_size=11,
               kernel_list=['iso', 'aniso'],
               kernel_prob=[0.5, 0.5], blur_sigma=[0.1, 3], downsample_range=[1, 4], noise_range=[0, 10],
               jpeg_range=[60, 100], color_jitter_prob=0.3, color_jitter_shift=20, gray_prob=0.01,
               crop_components=True, component_path=str(data_dir / 'ffhq_512' / 'eye_mouth_landmarks.pth'),
               eye_enlarge_ratio=1.4)
    ds = FFHQDegradationDataset(opt)
    assert ds.opt is opt and ds.io_backend_opt == {'type': 'disk'} and ds.io_backend_opt['type'] == 'disk'
    assert ds.gt_folder == str(data_dir / 'ffhq_512') and ds.paths == [str(data_dir / 'ffhq_512' / '00000000.png')]
    assert (ds.mean, ds.std, ds.out_size) == ([0.5] * 3, [0.5] * 3, 64)
    assert ds.blur_kernel_size == 11 and ds.kernel_list == ['iso', 'aniso'] and ds.blur_sigma == [0.1, 3]
    assert ds.color_jitter_shift == pytest.approx(20 / 255) and ds.gray_prob == 0.01 and ds.crop_components
    assert ds.components_list['00000000']['left_eye'][2] > 0  # upstream's component table, keyed by name
    assert ds.file_client.get(ds.paths[0], 'gt')[:4] == b'\x89PNG'
    sample = ds[0]
    assert set(sample) == {'lq', 'gt', 'gt_path', 'loc_left_eye', 'loc_right_eye', 'loc_mouth'}
    assert sample['lq'].shape == sample['gt'].shape == (3, 64, 64) and sample['gt_path'] == ds.paths[0]


def test_paired_and_single_datasets_answer_to_basicsr_attributes(tmp_path):
    from gfpgan.data.paired_image_dataset import PairedImageDataset
    from gfpgan.data.single_image_dataset import SingleImageDataset

    rng = np.random.default_rng(0)
    for sub, size in (('gt', 32), ('lq', 16)):
        (tmp_path / sub).mkdir()
        for name in ('a', 'b'):
            cv2.imwrite(str(tmp_path / sub / f'{name}.png'), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    opt = dict(dataroot_gt=str(tmp_path / 'gt'), dataroot_lq=str(tmp_path / 'lq'), io_backend={'type': 'disk'},
               filename_tmpl='{}', scale=2, phase='val')
    paired = PairedImageDataset(opt)
    assert paired.io_backend_opt == {'type': 'disk'} and paired.filename_tmpl == '{}'
    assert (paired.gt_folder, paired.lq_folder) == (str(tmp_path / 'gt'), str(tmp_path / 'lq'))
    assert paired.paths == [{'lq_path': str(tmp_path / 'lq' / f'{n}.png'), 'gt_path': str(tmp_path / 'gt' / f'{n}.png')}
                            for n in ('a', 'b')]
    item = paired[1]
    assert item['gt_path'] == paired.paths[1]['gt_path'] and item['lq'].shape == (3, 16, 16)

    single = SingleImageDataset(dict(dataroot_lq=str(tmp_path / 'lq'), io_backend={'type': 'disk'}))
    assert single.io_backend_opt == {'type': 'disk'} and single.paths == [str(tmp_path / 'lq' / f'{n}.png')
                                                                          for n in ('a', 'b')]
    assert single[0]['lq_path'] == single.paths[0]


# ---------------------------------------------------------------- facexlib's FaceRestoreHelper
class TemplateDetector:
    """Finds one 'face' per image: the FFHQ template scaled to the image's width (so coordinates depend on
    the size it is given); records the sizes it saw."""

    def __init__(self, extra_small_face: bool = False) -> None:
        self.seen: list[tuple[int, int]] = []
        self.extra_small_face = extra_small_face

    def detect(self, img):
        self.seen.append(img.shape[:2])
        s = img.shape[1] / 512
        faces = [DetectedFace(np.array([150, 180, 360, 420], np.float32) * s, face_template(512) * s, 0.99)]
        if self.extra_small_face:  # a distant face top-left
            faces.append(DetectedFace(np.array([0, 0, 40, 40], np.float32) * s, face_template(40) * s, 0.9))
        return faces


def test_facexlib_call_sequence_runs_unchanged(data_dir, tmp_path):
    """CodeFormer/GFPGAN-style scripts: construct, read a path, detect, align (saving crops), restore,
    inverse affine, paste (saving the result)."""
    from gfpgan.utils import FaceRestoreHelper

    face_helper = FaceRestoreHelper(2, face_size=512, crop_ratio=(1, 1), det_model='dlib', save_ext='png',
                                    use_parse=False, device=torch.device('cpu'), model_rootpath=str(tmp_path))
    face_helper.clean_all()
    face_helper.read_image(str(data_dir / 'whole_imgs' / 'Blake_Lively.jpg'))
    num = face_helper.get_face_landmarks_5(only_center_face=False, eye_dist_threshold=5)
    assert num == 2 == len(face_helper.all_landmarks_5) == len(face_helper.det_faces)
    assert all(lm.shape == (5, 2) for lm in face_helper.all_landmarks_5)
    assert all(box.shape == (5,) and box[2] > box[0] and box[3] > box[1] for box in face_helper.det_faces)
    face_helper.align_warp_face(save_cropped_path=str(tmp_path / 'crops' / 'Blake.jpg'))
    assert sorted(p.name for p in (tmp_path / 'crops').iterdir()) == ['Blake_00.png', 'Blake_01.png']
    assert len(face_helper.affine_matrices) == 2 and face_helper.cropped_faces[0].shape == (512, 512, 3)
    for cropped_face in face_helper.cropped_faces:
        face_helper.add_restored_face(cropped_face)  # a "restorer" that changes nothing
    face_helper.get_inverse_affine(None)
    out = face_helper.paste_faces_to_input_image(save_path=str(tmp_path / 'out.jpg'), upsample_img=None)
    img = face_helper.input_img
    assert out.shape == (img.shape[0] * 2, img.shape[1] * 2, 3)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / 'out.png')), out)  # save_ext, not the path's .jpg
    plain = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_LANCZOS4)
    assert np.abs(out.astype(float) - plain).mean() < 2  # unchanged faces land where they came from


def test_facexlib_names_and_options_behave(tmp_path):
    from gfpgan.face.face_restore_helper import FaceRestoreHelper

    detector = TemplateDetector(extra_small_face=True)
    helper = FaceRestoreHelper(upscale_factor=1, face_size=256, detector=detector)
    assert helper.face_det is detector and helper.detector is detector and not helper.use_parse
    assert helper.face_parse is None and helper.pad_input_imgs == [] and helper.crop_ratio == (1, 1)
    np.testing.assert_allclose(helper.face_template, face_template(512) / 2)
    helper.set_upscale_factor(3)
    assert helper.upscale_factor == 3 == helper.upscale
    helper.upscale_factor = 1
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)
    helper.read_image(img)
    assert helper.get_face_landmarks_5() == 2  # both faces' eyes are over 5 px apart
    assert helper.get_face_landmarks_5(eye_dist_threshold=20) == 1  # the small one's eyes are ~10 px apart
    assert helper.get_face_landmarks_5(only_keep_largest=True) == 1
    np.testing.assert_allclose(helper.det_faces[0], [150, 180, 360, 420, 0.99], rtol=1e-6)
    helper.get_face_landmarks_5(resize=128)  # as facexlib: resize only enlarges, a 512 px image stays 512 px
    assert detector.seen[-1] == (512, 512)
    helper.get_face_landmarks_5(resize=1024)  # detects on a 1024 px copy, answers in input pixels
    assert detector.seen[-1] == (1024, 1024)
    np.testing.assert_allclose(helper.all_landmarks_5[1], face_template(512), atol=1e-3)
    helper.read_image(img[:256])  # 256 x 512: the short side goes to 1024, the aspect ratio is kept
    helper.get_face_landmarks_5(resize=1024)
    assert detector.seen[-1] == (1024, 2048)
    np.testing.assert_allclose(helper.all_landmarks_5[1], face_template(512), atol=1e-3)
    helper.read_image(img)

    # align_warp_face reads all_landmarks_5, which scripts may edit: the template itself is the identity warp
    helper.all_landmarks_5 = [face_template(256)]
    crops = helper.align_warp_face(border_mode='reflect')
    np.testing.assert_allclose(crops[0].astype(float), img[:256, :256], atol=1)
    inv = helper.get_inverse_affine(save_inverse_affine_path=str(tmp_path / 'inv.pth'))
    saved = torch.load(tmp_path / 'inv_00.pth', weights_only=True)
    np.testing.assert_allclose(saved.numpy(), inv[0])
    np.testing.assert_allclose(inv[0], np.eye(2, 3), atol=1e-6)


def test_facexlib_options_not_offered_fail_clearly(tmp_path):
    from gfpgan.face.face_restore_helper import FaceRestoreHelper

    with pytest.raises(ValueError, match=r'crop_ratio \(1.2, 1\.2\) is not supported'):
        FaceRestoreHelper(2, crop_ratio=(1.2, 1.2))
    for flag in ('pad_blur', 'template_3points'):
        with pytest.raises(ValueError, match=f'{flag}=True is not supported'):
            FaceRestoreHelper(2, **{flag: True})
    with pytest.raises(ValueError, match="unknown det_model 'YOLOv5l'.*retinaface_resnet50"):
        FaceRestoreHelper(2, det_model='YOLOv5l')
    with pytest.raises(ValueError, match='model_rootpath'):
        FaceRestoreHelper(2, model_rootpath='a', weights_folder='b')
    helper = FaceRestoreHelper(2, detector=TemplateDetector())
    helper.read_image(np.zeros((64, 64, 3), np.uint8))
    helper.get_face_landmarks_5()
    helper.align_warp_face()
    helper.add_restored_face(helper.cropped_faces[0])
    with pytest.raises(TypeError, match='upsample_img='):  # the background passed where facexlib has save_path
        helper.paste_faces_to_input_image(np.zeros((128, 128, 3), np.uint8))
    with pytest.raises(ValueError, match='border_mode'):
        helper.align_warp_face(border_mode='wrap')


def test_retinaface_det_model_needs_facexlib_weights_in_model_rootpath(tmp_path, monkeypatch, no_weights_anywhere):
    from gfpgan.face.face_restore_helper import FaceRestoreHelper

    monkeypatch.setenv('GFPGAN_OFFLINE', '1')
    helper = FaceRestoreHelper(2, det_model='retinaface_resnet50', model_rootpath=str(tmp_path / 'w'), device='cpu')
    with pytest.raises(FileNotFoundError, match='detection_Resnet50_Final.pth'):
        helper.face_det  # noqa: B018 - built on first use


def test_use_parse_loads_parsenet_from_model_rootpath(tmp_path, monkeypatch, no_weights_anywhere):
    from gfpgan.face.face_restore_helper import FaceRestoreHelper
    from gfpgan.face.parsing import FaceParser, ParseNet
    from gfpgan.utils.checkpoint_io import save_checkpoint

    monkeypatch.setenv('GFPGAN_OFFLINE', '1')
    torch.manual_seed(0)
    weights = ParseNet().state_dict()
    save_checkpoint(weights, tmp_path / 'w' / 'parsing_parsenet.pth')  # facexlib's file name
    helper = FaceRestoreHelper(2, use_parse=True, device='cpu', model_rootpath=str(tmp_path / 'w'))
    assert helper.use_parse and isinstance(helper.face_parse, FaceParser)
    assert all(torch.equal(weights[k], v) for k, v in helper.face_parse.net.state_dict().items())
    with pytest.raises(FileNotFoundError, match='parsing_parsenet.pth'):
        FaceRestoreHelper(2, use_parse=True, device='cpu', model_rootpath=str(tmp_path / 'elsewhere'))


# ---------------------------------------------------------------- GFPGANer from gfpgan.utils
def test_gfpganer_from_gfpgan_utils_construct_and_enhance(tmp_path, data_dir):
    """Upstream's own test: `from gfpgan.utils import GFPGANer`, construct, enhance aligned and whole images."""
    from test_restorer import save_tiny_generator

    from gfpgan.utils import GFPGANer

    model_path = tmp_path / 'GFPGANv1.3.pth'
    save_tiny_generator(model_path)
    restorer = GFPGANer(model_path=str(model_path), upscale=2, arch='clean', channel_multiplier=2, bg_upsampler=None,
                        device='cpu')
    img = cv2.imread(str(data_dir / 'cropped_faces' / 'Adele_crop.png'), cv2.IMREAD_COLOR)
    cropped_faces, restored_faces, restored_img = restorer.enhance(img, has_aligned=True, paste_back=False)
    assert restored_img is None and len(cropped_faces) == len(restored_faces) == 1
    assert restored_faces[0].shape == (512, 512, 3) and restored_faces[0].dtype == np.uint8
    img = cv2.imread(str(data_dir / 'whole_imgs' / 'Blake_Lively.jpg'), cv2.IMREAD_COLOR)
    cropped_faces, restored_faces, restored_img = restorer.enhance(img, has_aligned=False, only_center_face=True,
                                                                   paste_back=True)
    assert len(restored_faces) == 1 and restored_img.shape == (img.shape[0] * 2, img.shape[1] * 2, 3)
    assert restorer.face_helper.upscale_factor == 2 and len(restorer.face_helper.det_faces) == 1
