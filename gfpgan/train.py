"""Training entry point: `python gfpgan/train.py -opt X.yml`, or with torchrun for DDP.

    python -m torch.distributed.run --nproc_per_node=N gfpgan/train.py -opt options/train.yml

The loop is recipe-agnostic: everything specific to a GAN lives in the model named by `model_type`.
"""

from __future__ import annotations

import math
import os
import os.path as osp
import sys
import time
from typing import Any, Sequence

if __package__ in (None, ''):  # run as a script: make the repo importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

from gfpgan.utils.options import OptionError  # noqa: E402


def create_train_val_dataloader(opt: dict, logger: Any) -> tuple:
    """Build the train loader (with its resumable sampler) and one loader per validation dataset."""
    from gfpgan.data import build_dataloader, build_dataset
    from gfpgan.data.sampler import EnlargedSampler, ShardSampler

    train_loader, train_sampler, val_loaders = None, None, []
    total_epochs = total_iters = 0
    for phase, dataset_opt in opt['datasets'].items():
        dataset_opt['phase'] = phase.split('_')[0]
        if dataset_opt['phase'] == 'train':
            train_set = build_dataset(dataset_opt, f'datasets.{phase}')
            ratio = dataset_opt.get('dataset_enlarge_ratio', 1)
            train_sampler = EnlargedSampler(train_set, opt['world_size'], opt['rank'], ratio, seed=opt['manual_seed'])
            train_loader = build_dataloader(
                train_set, dataset_opt, opt['num_gpu'], opt['dist'], train_sampler, opt['manual_seed']
            )
            batch = dataset_opt['batch_size_per_gpu']
            iters_per_epoch = len(train_sampler) // batch
            if iters_per_epoch == 0:
                raise OptionError(
                    f'datasets.{phase}: {len(train_set)} samples (x{ratio}) over {opt["world_size"]} process(es) '
                    f'make no full batch of {batch}. Lower batch_size_per_gpu or raise dataset_enlarge_ratio.'
                )
            total_iters = iters_for_epochs(opt['train'], iters_per_epoch)
            total_epochs = math.ceil(total_iters / iters_per_epoch)
            logger.info(
                f'Training statistics:\n\tNumber of train images: {len(train_set)}\n\tDataset enlarge ratio: {ratio}'
                f'\n\tBatch size per gpu: {batch}\n\tWorld size (gpu number): {opt["world_size"]}'
                f'\n\tRequire iter number per epoch: {iters_per_epoch}'
                f'\n\tTotal epochs: {total_epochs}; iters: {total_iters}.'
            )
        elif dataset_opt['phase'] == 'val':
            val_set = build_dataset(dataset_opt, f'datasets.{phase}')
            sampler = ShardSampler(val_set, opt['world_size'], opt['rank']) if opt['dist'] else None
            val_loaders.append(build_dataloader(val_set, dataset_opt, opt['num_gpu'], opt['dist'], sampler))
            logger.info(f'Number of val images/folders in {dataset_opt.get("name", phase)}: {len(val_set)}')
        else:
            raise OptionError(f"datasets.{phase}: the phase (text before the first '_') must be train or val.")
    return train_loader, train_sampler, val_loaders, total_epochs, total_iters


def iters_for_epochs(train_opt: dict, iters_per_epoch: int) -> int:
    """`train.total_iter`, or `train.epochs` x iterations per epoch, written back as `total_iter` (what the
    logger, schedulers and resumed runs read); exactly one of the two must be given."""
    total, epochs = train_opt.get('total_iter'), train_opt.get('epochs')
    if (total is None) == (epochs is None):
        raise OptionError('train: give exactly one of total_iter (iterations) or epochs (passes over the train '
                          f'set); got total_iter={total}, epochs={epochs}.')
    if epochs is not None:
        total = int(epochs) * iters_per_epoch
        train_opt['total_iter'] = total
        del train_opt['epochs']
    return int(total)


def load_resume_state(opt: dict) -> dict | None:
    """The state to resume from: `path.resume_state`, or with --auto_resume the newest complete one.

    With auto-resume each network's `pretrain_network_*` is pointed at its checkpoint of that iteration
    (except `ignore_resume_networks`). A state file that fails to load (cut short by a crash on a
    filesystem without atomic rename) is skipped for the one before it.
    """
    from gfpgan.utils.checkpoint_io import load_checkpoint
    from gfpgan.utils.experiment import list_training_states

    path = opt['path']
    candidates: list[tuple[int, str]] = []
    if opt.get('auto_resume'):
        candidates = list_training_states(path['training_states'])
    elif path.get('resume_state'):
        candidates = [(-1, path['resume_state'])]
    logger = __import__('logging').getLogger('gfpgan')
    for _, state_path in candidates:
        try:
            state = load_checkpoint(state_path, map_location='cpu')
        except Exception as err:
            if not opt.get('auto_resume'):
                raise
            logger.warning(f'Skipping unreadable training state {state_path}: {err}')
            continue
        current_iter = state['iter']
        if opt.get('auto_resume'):
            ignore = path.get('ignore_resume_networks') or []
            for key in [k for k in opt if k.startswith('network_')]:
                label = 'net_' + key[len('network_') :]
                if key in ignore or label in ignore:
                    continue
                ckpt = osp.join(path['models'], f'{label}_{current_iter}.pth')
                if osp.isfile(ckpt):
                    # the trained weights are `params` (an EMA copy, if any, is restored by the model)
                    name = key[len('network_') :]
                    path[f'pretrain_network_{name}'] = ckpt
                    path[f'param_key_{name}'] = 'params'
                    path[f'strict_load_{name}'] = True
        path['resume_state'] = state_path
        return state
    return None


def remove_stale_temporaries(experiments_root: str) -> list[str]:
    """Delete the hidden temporary files (`.<name>.<random>.tmp`, see `atomic_write`) that a run killed
    during a save left under its experiment folder; returns what was removed.

    A resumed run calls it on rank 0 before it writes anything, so no save of its own is in flight.
    """
    import logging
    import re

    pattern = re.compile(r'^\..+\.tmp$')
    removed = []
    for root, _, files in os.walk(experiments_root):
        for name in files:
            if pattern.match(name):
                os.remove(osp.join(root, name))
                removed.append(osp.join(root, name))
    if removed:
        logging.getLogger('gfpgan').warning(
            f'Removed {len(removed)} temporary file(s) left by an interrupted save: {", ".join(removed)}'
        )
    return removed


def _shutdown(tb_logger: Any, synchronize: bool = True) -> None:
    from gfpgan.utils.dist import shutdown_dist

    if tb_logger is not None:
        tb_logger.close()
    shutdown_dist(synchronize)
    sys.stdout.flush()
    sys.stderr.flush()


def train_pipeline(root_path: str, argv: Sequence[str] | None = None) -> str:
    """Run a whole training job; return the experiments folder."""
    from gfpgan.data.prefetcher import CPUPrefetcher, CUDAPrefetcher
    from gfpgan.models import build_model
    from gfpgan.utils.dist import barrier
    from gfpgan.utils.experiment import copy_opt_file, get_time_str, make_exp_dirs
    from gfpgan.utils.logger import (
        AvgTimer,
        MessageLogger,
        get_env_info,
        get_root_logger,
        init_tb_logger,
        init_wandb_logger,
    )
    from gfpgan.utils.options import dict2str, parse_options
    from gfpgan.utils.rng_state import set_rng_state

    opt, _ = parse_options(root_path, is_train=True, argv=argv)
    torch.backends.cudnn.benchmark = bool(opt.get('cudnn_benchmark', True))
    resume_state = load_resume_state(opt)
    make_exp_dirs(opt, resumed=resume_state is not None)
    barrier()
    copy_opt_file(opt['opt_path'], opt['path']['experiments_root'])
    log_file = osp.join(opt['path']['log'], f'train_{opt["name"]}_{get_time_str()}.log')
    logger = get_root_logger(log_file=log_file)
    if resume_state is not None and opt['rank'] == 0:  # before this run saves anything of its own
        remove_stale_temporaries(opt['path']['experiments_root'])
    logger.info(get_env_info())
    logger.info('\n' + dict2str(opt))
    tb_logger = None
    if opt['rank'] == 0 and (opt['logger'] or {}).get('use_tb_logger') and 'debug' not in opt['name']:
        init_wandb_logger(opt)
        tb_logger = init_tb_logger(opt['path']['tb_logger'])

    train_loader, train_sampler, val_loaders, total_epochs, total_iters = create_train_val_dataloader(opt, logger)
    model = build_model(opt)
    start_epoch, current_iter, iter_in_epoch = 0, 0, 0
    if resume_state is not None:
        model.resume_training(resume_state)
        start_epoch, current_iter = resume_state['epoch'], resume_state['iter']
        iter_in_epoch = resume_state.get('iter_in_epoch', 0)
        rng = resume_state.get('rng_per_rank', {}).get(opt['rank'], resume_state.get('rng'))
        if rng is not None:
            set_rng_state(rng)
        logger.info(
            f'Resuming training from epoch: {start_epoch}, iter: {current_iter} ({opt["path"]["resume_state"]}).'
        )

    train_opt = opt['train']
    prefetch_mode = opt['datasets']['train'].get('prefetch_mode')
    if prefetch_mode == 'cuda' and model.device.type == 'cuda':
        prefetcher = CUDAPrefetcher(train_loader, model.device)
        logger.info('Use cuda prefetch dataloader.')
    else:
        prefetcher = CPUPrefetcher(train_loader)

    batch = opt['datasets']['train']['batch_size_per_gpu']
    msg_logger = MessageLogger(opt, current_iter + 1, tb_logger)
    logger_opt = opt['logger'] or {}
    print_freq = int(logger_opt.get('print_freq', 100))
    save_freq = int(logger_opt.get('save_checkpoint_freq', 5000))
    val_opt = opt.get('val') or {}
    val_freq = int(val_opt.get('val_freq', 0) or 0)
    data_timer, iter_timer = AvgTimer(), AvgTimer()
    logger.info(f'Start training from epoch: {start_epoch}, iter: {current_iter}')
    start_time = time.time()
    epoch = start_epoch
    try:
        while current_iter < total_iters:
            train_sampler.set_epoch(epoch, start=iter_in_epoch * batch)
            prefetcher.reset()
            train_data = prefetcher.next()
            data_timer.restart()
            iter_timer.restart()
            while train_data is not None and current_iter < total_iters:
                data_timer.record()
                current_iter += 1
                iter_in_epoch += 1
                model.update_learning_rate(current_iter, warmup_iter=train_opt.get('warmup_iter', -1))
                model.feed_data(train_data)
                model.optimize_parameters(current_iter)
                iter_timer.record()
                if current_iter == msg_logger.start_iter:
                    msg_logger.reset_start_time()
                if current_iter % print_freq == 0:
                    log_vars = {'epoch': epoch, 'iter': current_iter, 'lrs': model.get_current_learning_rate()}
                    log_vars.update({'time': iter_timer.get_avg_time(), 'data_time': data_timer.get_avg_time()})
                    log_vars.update(model.get_current_log())
                    msg_logger(log_vars)
                # validate first, so the state saved at this iteration records its best metrics
                if val_loaders and val_freq and current_iter % val_freq == 0:
                    for loader in val_loaders:
                        model.validation(loader, current_iter, tb_logger, val_opt.get('save_img', False))
                if current_iter % save_freq == 0:
                    _save(model, epoch, current_iter, iter_in_epoch, logger)
                data_timer.restart()
                iter_timer.restart()
                train_data = prefetcher.next()
            if train_data is None:  # the epoch ran out
                epoch += 1
                iter_in_epoch = 0
        logger.info(f'End of training. Time consumed: {time.time() - start_time:.1f}s')
        logger.info('Save the latest model.')
        _save(model, epoch, -1, iter_in_epoch, logger)
        if val_loaders and val_freq and current_iter % val_freq != 0:  # else just validated
            for loader in val_loaders:
                model.validation(loader, current_iter, tb_logger, val_opt.get('save_img', False))
    except BaseException:
        _shutdown(tb_logger, synchronize=False)
        raise
    _shutdown(tb_logger)
    return opt['path']['experiments_root']


def _save(model: Any, epoch: int, current_iter: int, iter_in_epoch: int, logger: Any) -> None:
    """Save networks and the training state; RNG states are gathered from every rank so each resumes exactly."""
    from gfpgan.utils.dist import get_dist_info
    from gfpgan.utils.rng_state import get_rng_state

    rank, world = get_dist_info()
    rng_per_rank = {0: get_rng_state()}
    if world > 1:
        import torch.distributed as dist

        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, get_rng_state())
        rng_per_rank = dict(enumerate(gathered))
    if current_iter != -1:
        logger.info('Saving models and training states.')
    model.save(epoch, current_iter)
    if current_iter != -1:
        model.save_training_state(
            epoch, current_iter, extra={'iter_in_epoch': iter_in_epoch, 'rng_per_rank': rng_per_rank}
        )
        keep = (model.opt.get('logger') or {}).get('keep_last_checkpoints')
        if keep and rank == 0:
            prune_checkpoints(model.opt['path'], int(keep))


def prune_checkpoints(path: dict, keep: int) -> None:
    """Delete all but the newest `keep` iterations' states and network files (`latest`/`best` stay)."""
    from gfpgan.utils.experiment import list_training_states

    for iteration, state_path in list_training_states(path['training_states'])[keep:]:
        for name in os.listdir(path['models']):
            if name.endswith(f'_{iteration}.pth'):
                os.remove(osp.join(path['models'], name))
        os.remove(state_path)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: option mistakes print as one paragraph and exit with status 2."""
    from gfpgan.utils.allocator import keep_freed_memory

    keep_freed_memory()  # large CPU tensors reuse their pages between iterations (gfpgan/utils/allocator.py)
    root_path = os.getcwd()
    try:
        train_pipeline(root_path, argv)
    except (OptionError, FileNotFoundError) as err:  # a mistake in the options or data paths: no traceback
        print(f'gfpgan-train: error: {err}', file=sys.stderr, flush=True)
        from gfpgan.utils.dist import shutdown_dist

        shutdown_dist(synchronize=False)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
