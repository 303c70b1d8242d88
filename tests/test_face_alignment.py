"""Face detection, alignment to the FFHQ template and paste-back geometry."""
from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from gfpgan.face.alignment import (
    BORDER_VALUE,
    FFHQ_TEMPLATE_512,
    estimate_alignment,
    face_template,
    inverse_affine,
    similarity_lstsq,
    transform_points,
    warp_face,
)
from gfpgan.face.detection import DlibFaceDetector, dlib_models_dir, five_from_68
from gfpgan.face.paste import feather_mask, paste_face


def similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def blob_image(points: np.ndarray, h: int, w: int, sigma: float = 2.0) -> np.ndarray:
    """Black image with one Gaussian blob per point: their centroids locate the points to subpixel precision."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w), np.float64)
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return np.repeat((img * 255).clip(0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def blob_centroids(img: np.ndarray, near: np.ndarray, radius: int = 8) -> np.ndarray:
    gray = img[:, :, 0].astype(np.float64)
    gray = np.where(gray > 20, gray, 0)  # ignore interpolation dust
    out = []
    for x, y in near:
        x0, y0 = int(round(x)) - radius, int(round(y)) - radius
        patch = gray[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1]
        yy, xx = np.mgrid[0:patch.shape[0], 0:patch.shape[1]]
        out.append([(xx * patch).sum() / patch.sum() + x0, (yy * patch).sum() / patch.sum() + y0])
    return np.array(out)


def test_template_scales_with_face_size():
    np.testing.assert_allclose(face_template(256), FFHQ_TEMPLATE_512 / 2, rtol=1e-6)
    assert face_template(512)[0, 0] < face_template(512)[1, 0]  # image-left eye first


@pytest.mark.parametrize('method', ['lmeds', 'lstsq'])
def test_alignment_recovers_a_known_similarity(method):
    truth = similarity(0.37, 12.0, 40.5, -13.25)  # template -> image
    landmarks = transform_points(FFHQ_TEMPLATE_512, truth)
    matrix = estimate_alignment(landmarks, 512, method)  # image -> template
    np.testing.assert_allclose(transform_points(landmarks, matrix), FFHQ_TEMPLATE_512, atol=1e-3)
    np.testing.assert_allclose(matrix[:, :2] @ truth[:, :2], np.eye(2), atol=1e-5)


def test_lstsq_is_the_least_squares_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 300, (5, 2))
    dst = transform_points(src, similarity(1.7, -33, 5, 9)) + rng.normal(0, 2, (5, 2))
    best = similarity_lstsq(src, dst)
    err = ((transform_points(src, best) - dst) ** 2).sum()
    for _ in range(20):  # any nudged similarity fits worse
        a, b = best[0, 0] + rng.normal(0, 1e-3), best[1, 0] + rng.normal(0, 1e-3)
        nudged = np.array([[a, -b, best[0, 2] + rng.normal(0, 0.1)], [b, a, best[1, 2] + rng.normal(0, 0.1)]])
        assert ((transform_points(src, nudged) - dst) ** 2).sum() > err
    with pytest.raises(ValueError, match='coincide'):
        similarity_lstsq(np.ones((5, 2)), dst)


@pytest.mark.parametrize('upscale', [1, 2, 3])
def test_warp_round_trip_lands_within_one_pixel(upscale):
    """Warp to the template and back (as paste-back does, into an upscaled image): landmarks within 1 px."""
    h, w = 300, 420
    landmarks = transform_points(FFHQ_TEMPLATE_512, similarity(0.28, -17.0, 150.3, 31.7))
    img = blob_image(landmarks, h, w)
    matrix = estimate_alignment(landmarks)
    crop = warp_face(img, matrix)
    in_crop = blob_centroids(crop, FFHQ_TEMPLATE_512, radius=16)
    assert np.abs(in_crop - FFHQ_TEMPLATE_512).max() < 1.0

    inv = inverse_affine(matrix, upscale)
    back = cv2.warpAffine(crop, inv, (w * upscale, h * upscale), flags=cv2.INTER_LINEAR)
    expected = upscale * (landmarks + 0.5) - 0.5  # where a resize by `upscale` puts these pixels
    found = blob_centroids(back, expected, radius=4 * upscale)
    assert np.abs(found - expected).max() < 1.0


def test_warp_fills_outside_with_the_border_colour():
    img = np.full((100, 100, 3), 10, np.uint8)
    crop = warp_face(img, similarity(1.0, 0, 400, 400)[:, :])  # image lands far inside the crop's corner
    assert tuple(crop[0, 0]) == BORDER_VALUE
    assert tuple(crop[450, 450]) == (10, 10, 10)


def test_five_points_from_68():
    pts = np.zeros((68, 2), np.float32)
    pts[36:42] = [10, 20]
    pts[42:48] = [30, 22]
    pts[30], pts[33] = [20, 28], [20, 32]
    pts[60], pts[64] = [12, 40], [28, 41]
    np.testing.assert_array_equal(five_from_68(pts), [[10, 20], [30, 22], [20, 30], [12, 40], [28, 41]])


def test_dlib_models_found_without_importing_face_recognition_models():
    before = 'face_recognition_models' in sys.modules
    folder = dlib_models_dir()
    assert (folder / 'shape_predictor_68_face_landmarks.dat').is_file()
    assert ('face_recognition_models' in sys.modules) == before


@pytest.mark.parametrize('name', ['Adele_crop.png', 'Julia_Roberts_crop.png', 'Justin_Timberlake_crop.png',
                                  'Paris_Hilton_crop.png'])
def test_dlib_points_match_the_template_on_upstream_crops(data_dir, name):
    """Upstream aligned these crops with RetinaFace to the template: dlib's five points must agree,
    so its alignment of an aligned crop is close to the identity: measured here within 8 % scale,
    4 degrees and 3 px, the difference between dlib's and RetinaFace's idea of the same points."""
    img = cv2.imread(str(data_dir / 'cropped_faces' / name))
    faces = DlibFaceDetector().detect(img)
    assert len(faces) == 1
    assert np.abs(faces[0].landmarks - FFHQ_TEMPLATE_512).max() < 20
    matrix = estimate_alignment(faces[0].landmarks)
    np.testing.assert_allclose(matrix[:, :2], np.eye(2), atol=0.1)
    assert np.abs(transform_points([[256, 256]], matrix) - 256).max() < 6


def test_detector_round_trip_on_a_real_face(data_dir):
    """Real photo: align each face, paste the crop back unchanged, re-detect: landmarks within 2 px."""
    det = DlibFaceDetector()
    img = cv2.imread(str(data_dir / 'whole_imgs' / 'Blake_Lively.jpg'))
    faces = det.detect(img)
    assert len(faces) == 2
    canvas = img.copy()
    for face in faces:
        matrix = estimate_alignment(face.landmarks)
        paste_face(canvas, warp_face(img, matrix), inverse_affine(matrix))
    again = det.detect(canvas)
    for face in faces:
        nearest = min(again, key=lambda f: np.abs(f.landmarks - face.landmarks).max())
        assert np.abs(nearest.landmarks - face.landmarks).max() <= 2.0


def test_detector_returns_nothing_for_tiny_or_blank_images():
    det = DlibFaceDetector()
    assert det.detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert det.detect(np.full((64, 64, 3), 128, np.uint8)) == []


def test_feather_mask_is_one_inside_and_zero_at_the_edge():
    mask = feather_mask(512)
    assert mask[256, 256] == 1.0 and mask[0, 256] == 0.0 and mask[256, -1] == 0.0
    assert 0 < mask[256, 20] < 1
    np.testing.assert_array_equal(mask, mask.T)


def test_paste_changes_only_the_face_region():
    canvas = np.full((400, 600, 3), 50, np.uint8)
    face = np.full((512, 512, 3), 250, np.uint8)
    inv = inverse_affine(similarity(1 / 0.25, 0, -200, -100))  # crop = 4x the image: a 128 px face at (50, 25)
    paste_face(canvas, face, inv)
    assert (canvas[25 + 64, 50 + 64] == 250).all()  # centre fully replaced
    assert (canvas[:, 200:] == 50).all() and (canvas[160:] == 50).all()  # far away untouched
    before = canvas.copy()
    paste_face(canvas, face, inverse_affine(similarity(1.0, 0, 5000, 5000)))  # face outside the image
    np.testing.assert_array_equal(canvas, before)


# --- optional RetinaFace detector (random weights: layout, shapes and decoding only) -------------------

def test_retinaface_layout_matches_facexlib_keys():
    import torch

    from gfpgan.face.retinaface import RetinaFace

    with torch.device('meta'):
        sd = RetinaFace().state_dict()
    expected = {
        'body.conv1.weight': (64, 3, 7, 7), 'body.layer1.0.downsample.0.weight': (256, 64, 1, 1),
        'body.layer3.5.conv3.weight': (1024, 256, 1, 1), 'body.layer4.2.bn3.running_var': (2048,),
        'fpn.output1.0.weight': (256, 512, 1, 1), 'fpn.output3.1.weight': (256,),
        'fpn.merge2.0.weight': (256, 256, 3, 3),
        'ssh1.conv3X3.0.weight': (128, 256, 3, 3), 'ssh2.conv5X5_1.0.weight': (64, 256, 3, 3),
        'ssh3.conv7x7_3.1.num_batches_tracked': (), 'ClassHead.0.conv1x1.weight': (4, 256, 1, 1),
        'BboxHead.1.conv1x1.bias': (8,), 'LandmarkHead.2.conv1x1.weight': (20, 256, 1, 1),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(k.startswith(('body.fc', 'body.layer4.3')) for k in sd)


def test_retinaface_priors_decoding_and_detector(tmp_path):
    import torch

    from gfpgan.face.retinaface import RetinaFace, RetinaFaceDetector, decode, prior_boxes
    from gfpgan.utils.checkpoint_io import save_checkpoint

    priors = prior_boxes(64, 96)
    assert priors.shape == (2 * (8 * 12 + 4 * 6 + 2 * 3), 4)
    np.testing.assert_allclose(priors[:2].numpy(),
                               [[4 / 96, 4 / 64, 16 / 96, 16 / 64], [4 / 96, 4 / 64, 32 / 96, 32 / 64]])
    boxes, points = decode(torch.zeros(len(priors), 4), torch.zeros(len(priors), 10), priors)
    np.testing.assert_allclose(boxes[0].numpy(), [4 / 96 - 8 / 96, 4 / 64 - 8 / 64, 4 / 96 + 8 / 96, 4 / 64 + 8 / 64],
                               atol=1e-6)
    np.testing.assert_allclose(points[0].numpy(), [4 / 96, 4 / 64] * 5, atol=1e-6)

    torch.manual_seed(0)
    net = RetinaFace().eval()
    with torch.no_grad():
        loc, conf, landm = net(torch.randn(1, 3, 64, 96))
    assert loc.shape == (1, len(priors), 4) and conf.shape == (1, len(priors), 2) and landm.shape[-1] == 10
    torch.testing.assert_close(conf.sum(-1), torch.ones(1, len(priors)))
    path = tmp_path / 'detection_Resnet50_Final.pth'
    save_checkpoint({f'module.{k}': v for k, v in net.state_dict().items()}, path)  # DataParallel-style keys
    det = RetinaFaceDetector(path, device='cpu', conf_threshold=0.0)
    faces = det.detect(np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8))
    assert faces and all(f.landmarks.shape == (5, 2) and f.box.shape == (4,) for f in faces)
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


def test_pure_torch_nms_matches_greedy_reference():
    import torch

    from gfpgan.face.retinaface import nms_torch

    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (200, 2))
    wh = rng.uniform(5, 40, (200, 2))
    boxes = np.concatenate([xy, xy + wh], 1)
    scores = rng.uniform(0, 1, 200)

    def iou(a, b):
        inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    expected = []
    for i in np.argsort(-scores, kind='stable'):
        if all(iou(boxes[i], boxes[j]) <= 0.4 for j in expected):
            expected.append(int(i))
    got = nms_torch(torch.tensor(boxes), torch.tensor(scores), 0.4)
    assert got.tolist() == expected


# --- optional ParseNet face parsing (random weights: layout and mask recipe) ------------------------------

def test_parsenet_layout_matches_the_release_file_keys():
    import torch

    from gfpgan.face.parsing import ParseNet

    with torch.device('meta'):
        sd = ParseNet().state_dict()
    expected = {
        'encoder.0.conv2d.weight': (64, 3, 3, 3), 'encoder.1.shortcut_func.conv2d.weight': (128, 64, 3, 3),
        'encoder.4.conv2.norm.norm.running_mean': (256,), 'body.9.conv1.conv2d.weight': (256, 256, 3, 3),
        'decoder.0.shortcut_func.conv2d.bias': (256,), 'decoder.3.conv1.conv2d.weight': (64, 128, 3, 3),
        'out_img_conv.conv2d.weight': (3, 64, 3, 3), 'out_mask_conv.conv2d.bias': (19,),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert 'body.0.shortcut_func.conv2d.weight' not in sd  # identity shortcut inside the body
    assert not any(k.endswith('conv1.conv2d.bias') for k in sd)  # BN convs have no bias


def test_face_parser_mask_recipe(monkeypatch):
    import torch

    from gfpgan.face.parsing import FaceParser, ParseNet

    torch.manual_seed(0)
    net = ParseNet(size=64, res_depth=1)
    logits, img = net(torch.zeros(2, 3, 64, 64))
    assert logits.shape == (2, 19, 64, 64) and img.shape == (2, 3, 64, 64)
    parser = FaceParser(net=net, device='cpu')

    def fake_labels(x):  # skin in a centred square, hat (not face) elsewhere
        labels = torch.full((1, 19, 64, 64), -1.0)
        labels[:, 14] = 1.0
        labels[:, 1, 16:48, 16:48] = 2.0
        return labels, x

    monkeypatch.setattr(parser, 'net', type('N', (), {'size': 64, '__call__': lambda self, x: fake_labels(x)})())
    mask = parser(np.zeros((512, 512, 3), np.uint8))
    assert mask.shape == (512, 512) and mask.dtype == np.float32
    assert mask[256, 256] > 0.9 and mask[40, 256] < 0.05 and mask[0].max() == 0 and mask[:, -1].max() == 0
    assert 0 <= mask.min() and mask.max() <= 1
