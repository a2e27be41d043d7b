"""Packaging for the StyleGAN2 / image-squeeze-connection training framework."""

import setuptools

# A range, not a pin: where a torch >= 2.1 is already installed, pip keeps it instead of pulling
# a multi-GB CUDA build. Fresh machines get the newest release for their platform.
RUNTIME_REQUIREMENTS = [
    'torch>=2.1',
    'numpy>=1.22',
    'click>=8.0',
    'pillow>=9.0',
    'scipy>=1.8',
    'tensorboard>=2.10',
    'ninja>=1.10',
]

setuptools.setup(
    name='squeezegan',
    version='0.1.0',
    description='StyleGAN2-family GAN training with skip, residual and image squeeze connections.',
    license='Apache-2.0',  # LICENSE; third-party weights keep their owners' licences (README, "Citing and licences").
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=setuptools.find_packages(include=['dnnlib', 'dnnlib.*', 'torch_utils', 'torch_utils.*',
                                               'training', 'training.*', 'metrics', 'metrics.*']),
    py_modules=['train', 'generate', 'gen_video', 'projector', 'calc_metrics', 'dataset_tool'],
    package_data={'torch_utils.ops': ['*.cu', '*.cpp', '*.h']},
    install_requires=RUNTIME_REQUIREMENTS,
    extras_require={
        # sklearn: the demo dataset is tested too; lmdb: reading LSUN (three of the paper's datasets) is tested too.
        # pytest 7.3 reads pytest.ini's tmp_path_retention_* settings.
        'test': ['pytest>=7.3', 'scikit-learn>=1.0', 'lmdb>=1.0'],
        'demo': ['scikit-learn>=1.0'],  # Ships the 1,797 handwritten digits the demo trains on, offline.
        'lsun': ['lmdb>=1.0'],  # dataset_tool.py --source=<LSUN lmdb folder>.
        'video': ['imageio>=2.9', 'imageio-ffmpeg>=0.4'],  # gen_video.py --output=*.mp4 (GIF and WebP need nothing).
        'onnx': ['onnx>=1.14', 'onnxruntime>=1.16'],  # python -m training.export --dest=G.onnx, and its parity test.
    },
)
