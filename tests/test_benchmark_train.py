"""The training benchmarks' references (scripts/benchmark_train.py) compute the models' losses: a ratio
between two modes means something only if both run the same maths."""
from __future__ import annotations

import contextlib
import importlib.util
import math
import sys
from pathlib import Path

import torch

from gfpgan.models import build_model

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str):
    sys.path.insert(0, str(REPO / 'scripts'))  # benchmark.py imports its sibling modules by name
    spec = importlib.util.spec_from_file_location(f'_script_{name}', REPO / 'scripts' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


BENCH, STEPS = load_script('benchmark'), load_script('benchmark_train')


def test_gfpgan_model_iteration_losses_equal_upstream_structured_reference(tmp_path):
    """The training benchmark times GFPGANModel against upstream's iteration written out on the same weights:
    the first iteration's losses agree key by key, also after the steps (the second iteration too)."""
    network_g = dict(BENCH.GFPGAN_ITER_G, out_size=32, num_style_feat=64, narrow=0.25, num_mlp=2)
    data = STEPS.synthetic_batch(32, 2)
    torch.manual_seed(0)
    model = build_model(STEPS.iteration_options(network_g, tmp_path))
    reference = STEPS.UpstreamGFPGANStep(model, data)
    for it in (1, 2):
        torch.manual_seed(it)
        with BENCH.upstream_structure():
            ref = reference.step()
        torch.manual_seed(it)
        model.feed_data(data)
        model.optimize_parameters(it)
        ours = {k: float(v) for k, v in model.log_dict.items()}
        expected = {'l_g_pix', 'l_g_percep', 'l_g_style', 'l_g_gan', 'l_g_comp_style_loss', 'l_identity', 'l_d',
                    *(f'l_{k}_{c}' for k in ('g_gan', 'd') for c in ('left_eye', 'right_eye', 'mouth')),
                    'l_p_8', 'l_p_16', 'l_p_32'}
        assert set(ref) == expected and expected <= set(ours)
        for key, value in ref.items():
            assert math.isfinite(value) and abs(ours[key] - value) <= 1e-5 * max(1.0, abs(value)), (it, key)


def test_lightweight_gan_upstream_structure_equal_losses_but_d_gradients_from_the_g_step(tmp_path):
    """Upstream's structure (D not frozen in the G step) gives the same losses; only D's leftover gradients
    differ, so the patch really changes what the G step computes."""
    real = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    logs, grads = [], []
    for i, structure in enumerate((STEPS.lightweight_upstream_structure, None)):
        torch.manual_seed(0)
        model = build_model(STEPS.lightweight_gan_options(32, 4, tmp_path / str(i)))
        torch.manual_seed(5)
        with structure() if structure else contextlib.nullcontext():
            model.feed_data({'gt': real})
            model.optimize_parameters(1)
        logs.append({k: float(v) for k, v in model.log_dict.items()})
        grads.append(torch.cat([p.grad.flatten() for p in model.net_d.parameters() if p.grad is not None]))
    assert {'l_d', 'l_d_recon', 'l_g'} <= set(logs[0])
    for key in ('l_d', 'l_d_recon', 'l_g'):
        assert math.isfinite(logs[0][key]) and abs(logs[0][key] - logs[1][key]) <= 1e-6 * max(1.0, abs(logs[1][key]))
    assert grads[0].shape == grads[1].shape and not torch.allclose(grads[0], grads[1])
