"""Evaluation entry point: `python gfpgan/test.py -opt options/test_X.yml` (torchrun shards it over ranks).

Restores every `datasets.test*`/`val*` set, computes `val.metrics`, saves images, and writes a metrics
table (`metrics.csv` and `metrics.md`) in `results/<name>/`.
"""

from __future__ import annotations

import os
import os.path as osp
import sys
from typing import Sequence

if __package__ in (None, ''):
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from gfpgan.utils.options import OptionError  # noqa: E402


def test_pipeline(root_path: str, argv: Sequence[str] | None = None) -> dict:
    """Evaluate; return {dataset name: {metric: value}}."""
    from gfpgan.data import build_dataloader, build_dataset
    from gfpgan.data.sampler import ShardSampler
    from gfpgan.models import build_model
    from gfpgan.utils.checkpoint_io import atomic_write
    from gfpgan.utils.dist import barrier, shutdown_dist
    from gfpgan.utils.experiment import get_time_str, make_exp_dirs
    from gfpgan.utils.logger import get_env_info, get_root_logger
    from gfpgan.utils.options import dict2str, parse_options

    opt, _ = parse_options(root_path, is_train=False, argv=argv)
    try:
        make_exp_dirs(opt, resumed=False)
        barrier()
        logger = get_root_logger(log_file=osp.join(opt['path']['log'], f'test_{opt["name"]}_{get_time_str()}.log'))
        logger.info(get_env_info())
        logger.info('\n' + dict2str(opt))
        loaders = []
        for phase, dataset_opt in (opt.get('datasets') or {}).items():
            dataset_opt['phase'] = 'val'
            dataset = build_dataset(dataset_opt, f'datasets.{phase}')
            sampler = ShardSampler(dataset, opt['world_size'], opt['rank']) if opt['dist'] else None
            loaders.append(build_dataloader(dataset, dataset_opt, opt['num_gpu'], opt['dist'], sampler))
        if not loaders:
            raise OptionError(f'{opt["opt_path"]}: datasets: no test dataset given.')
        model = build_model(opt)
        results = {}
        for loader in loaders:
            name = loader.dataset.opt.get('name', 'test')
            logger.info(f'Testing {name}...')
            results[name] = model.validation(
                loader, current_iter=0, tb_logger=None, save_img=(opt.get('val') or {}).get('save_img', True)
            )
        if opt['rank'] == 0:
            _write_tables(results, opt['path']['results_root'], atomic_write)
        return results
    finally:
        shutdown_dist()


def _write_tables(results: dict, folder: str, atomic_write) -> None:
    metrics = sorted({m for r in results.values() for m in r if not m.startswith('_')})
    csv = ['dataset,images,' + ','.join(metrics)]
    md = ['| dataset | images | ' + ' | '.join(metrics) + ' |', '|---' * (len(metrics) + 2) + '|']
    for name, r in results.items():
        values = [f'{r.get(m, float("nan")):.6f}' for m in metrics]
        csv.append(f'{name},{r.get("_count", 0)},' + ','.join(values))
        md.append(f'| {name} | {r.get("_count", 0)} | ' + ' | '.join(values) + ' |')
    for fname, lines in (('metrics.csv', csv), ('metrics.md', md)):
        atomic_write(osp.join(folder, fname), lambda tmp, lines=lines: open(tmp, 'w').write('\n'.join(lines) + '\n'))


def main(argv: Sequence[str] | None = None) -> int:
    from gfpgan.utils.allocator import keep_freed_memory

    keep_freed_memory()  # large CPU tensors reuse their pages between batches (gfpgan/utils/allocator.py)
    try:
        test_pipeline(os.getcwd(), argv)
    except (OptionError, FileNotFoundError) as err:  # a mistake in the options or data paths: no traceback
        print(f'gfpgan-test: error: {err}', file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
