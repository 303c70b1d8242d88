"""Score a folder of restored faces; the same as the `gfpgan-evaluate` console script (see gfpgan/evaluate.py).

    python scripts/evaluate.py -i RESTORED -r REFERENCE -o REPORT_DIR --metrics psnr,ssim,lpips,niqe,fid,identity,lmd
    torchrun --nproc_per_node=N scripts/evaluate.py ...   # the same numbers, N times faster
"""
import os
import sys

if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from gfpgan.evaluate import main

    sys.exit(main())
