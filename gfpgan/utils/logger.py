"""Console + file logging (rank 0 only), the upstream training log line with ETA, tensorboard and wandb."""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

from gfpgan.utils.dist import get_dist_info

_initialized: set[str] = set()


def get_root_logger(
    logger_name: str = 'gfpgan', log_level: int = logging.INFO, log_file: str | None = None
) -> logging.Logger:
    """The project logger: console on every rank (errors only on ranks > 0), plus a log file on rank 0."""
    logger = logging.getLogger(logger_name)
    if logger_name in _initialized:
        if (
            log_file
            and get_dist_info()[0] == 0
            and not any(isinstance(h, logging.FileHandler) and h.baseFilename == log_file for h in logger.handlers)
        ):
            _add_file_handler(logger, log_file, log_level)
        return logger
    fmt = logging.Formatter('%(asctime)s %(levelname)s: %(message)s')
    stream = logging.StreamHandler()
    stream.setFormatter(fmt)
    logger.addHandler(stream)
    logger.propagate = False
    rank = get_dist_info()[0]
    if rank != 0:
        logger.setLevel(logging.ERROR)
    else:
        logger.setLevel(log_level)
        if log_file:
            _add_file_handler(logger, log_file, log_level)
    _initialized.add(logger_name)
    return logger


def _add_file_handler(logger: logging.Logger, log_file: str, level: int) -> None:
    handler = logging.FileHandler(log_file, 'a')
    handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s: %(message)s'))
    handler.setLevel(level)
    logger.addHandler(handler)


class AvgTimer:
    """Running average of the time between `record()` calls (the first `skip` are ignored as warm-up)."""

    def __init__(self, skip: int = 5) -> None:
        self.skip, self.count, self.total = skip, 0, 0.0
        self.start = self.last = time.time()
        self.current = 0.0

    def record(self) -> None:
        now = time.time()
        self.current = now - self.last
        self.last = now
        self.count += 1
        if self.count > self.skip:
            self.total += self.current

    def get_current_time(self) -> float:
        return self.current

    def get_avg_time(self) -> float:
        n = self.count - self.skip
        return self.total / n if n > 0 else self.current

    def restart(self) -> None:
        self.last = time.time()


class MessageLogger:
    """Writes the upstream-format training line and the tensorboard/wandb scalars."""

    def __init__(self, opt: dict, start_iter: int = 1, tb_logger: Any = None) -> None:
        self.exp_name = opt['name']
        self.interval = opt['logger'].get('print_freq', 100)
        self.max_iters = opt['train']['total_iter']
        self.use_tb_logger = opt['logger'].get('use_tb_logger', False)
        self.tb_logger = tb_logger
        self.start_time = time.time()
        self.start_iter = start_iter
        self.logger = get_root_logger()

    def reset_start_time(self) -> None:
        self.start_time = time.time()

    def __call__(self, log_vars: dict) -> None:
        epoch, current_iter = log_vars.pop('epoch'), log_vars.pop('iter')
        lrs = log_vars.pop('lrs')
        message = f'[{self.exp_name[:5]}..][epoch:{epoch:3d}, iter:{current_iter:8,d}, lr:('
        message += ', '.join(f'{v:.3e}' for v in lrs) + ',)] '
        if 'time' in log_vars:
            iter_time, data_time = log_vars.pop('time'), log_vars.pop('data_time')
            elapsed = time.time() - self.start_time
            done = max(current_iter - self.start_iter + 1, 1)
            eta_sec = elapsed / done * (self.max_iters - current_iter)
            message += f'[eta: {datetime.timedelta(seconds=int(eta_sec))}, '
            message += f'time (data): {iter_time:.3f} ({data_time:.3f})] '
        for k, v in log_vars.items():
            message += f'{k}: {v:.4e} '
            if self.use_tb_logger and self.tb_logger is not None and 'debug' not in self.exp_name:
                self.tb_logger.add_scalar(f'losses/{k}' if k.startswith('l_') else k, v, current_iter)
        self.logger.info(message)


def init_tb_logger(log_dir: str) -> Any:
    """A tensorboard SummaryWriter, or None (with a warning) when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception as err:  # tensorboard missing or broken
        get_root_logger().warning('Tensorboard logging is off: %s', err)
        return None
    return SummaryWriter(log_dir=log_dir)


def init_wandb_logger(opt: dict) -> None:
    """Start a wandb run that mirrors tensorboard, only when wandb is installed and configured."""
    logger = get_root_logger()
    wandb_opt = (opt.get('logger') or {}).get('wandb') or {}
    if not wandb_opt.get('project'):
        return
    try:
        import wandb
    except ImportError:
        logger.warning('logger.wandb is set but wandb is not installed (pip install wandb); skipping wandb.')
        return
    resume_id = wandb_opt.get('resume_id')
    wandb.init(
        id=resume_id or wandb.util.generate_id(),
        resume='allow' if resume_id else 'never',
        name=opt['name'],
        config=opt,
        project=wandb_opt['project'],
        sync_tensorboard=True,
    )
    logger.info('wandb logging to project %s', wandb_opt['project'])


def get_env_info() -> str:
    import platform

    import torch

    return (
        f'\n  Python {platform.python_version()}  PyTorch {torch.__version__}  '
        f'CUDA {torch.version.cuda if torch.cuda.is_available() else "not available"}'
    )
