"""tfx-preflight: a TFX gate between ExampleGen and Trainer.

Version pins live in constraints.txt only; install with `pip install -c constraints.txt -e '.[kfp,dev]'`.
"""

import os
import re

from setuptools import find_packages, setup

_HERE = os.path.dirname(os.path.abspath(__file__))


def _pinned(name: str) -> str:
  """'name==version' as pinned in constraints.txt, so setup never disagrees with CI and the image."""
  with open(os.path.join(_HERE, 'constraints.txt'), encoding='utf-8') as f:
    for line in f:
      match = re.match(rf'^{re.escape(name)}==(\S+)', line.strip(), re.IGNORECASE)
      if match:
        return f'{name}=={match.group(1)}'
  raise RuntimeError(f'constraints.txt does not pin {name}')


setup(
    name='tfx-preflight',
    version='0.1.0',
    description='A TFX component that blocks training on train/eval skew, leakage or a broken loss.',
    long_description=open(os.path.join(_HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9,<3.11',
    package_dir={'': 'components'},
    packages=find_packages('components'),
    install_requires=[
        _pinned('tfx'),
        _pinned('apache-beam').replace('apache-beam', 'apache-beam[gcp]'),
        'google-crc32c',  # TFRecord checksums in hashing.py; pinned by constraints.txt.
    ],
    extras_require={
        'kfp': [_pinned('tfx').replace('tfx', 'tfx[kfp]')],
        'dev': ['pytest', 'pytest-xdist', 'pytest-timeout', 'hypothesis', 'ruff', 'pandas', 'scikit-learn',
                'matplotlib'],
    },
    entry_points={'console_scripts': ['tfx-preflight=tfx_preflight.cli:main']},
)
