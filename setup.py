"""tfx-preflight: a TFX gate between ExampleGen and Trainer.

install_requires states the range of the stack the code supports (TFX 1.15-1.16 with their TensorFlow and Beam), so
pip installs next to a user's TFX without touching it. The tested locks are constraints.txt (TFX 1.16: `make`, CI,
the image) and constraints/tfx-1.15.txt (the TFX 1.15 CI lane): `pip install -c <lock> tfx-preflight`.
"""

import os
import re

from setuptools import find_packages, setup

_HERE = os.path.dirname(os.path.abspath(__file__))

# The supported stack: TFX 1.15 (TF 2.15, Keras 2) and TFX 1.16 (TF 2.16, Keras 3 or tf_keras). Beam 2.60+ is not
# tested, and a Beam without dill breaks tfx-bsl's import, so Beam is capped too; 2.47 is TFX 1.15's own floor.
TFX = 'tfx>=1.15,<1.17'
STACK = [
    TFX,
    'apache-beam[gcp]>=2.47,<2.60',
    'tensorflow>=2.15,<2.17',
    'google-crc32c>=1.1',  # TFRecord checksums in records.py.
]


def _version() -> str:
  """__version__ of components/tfx_preflight/__init__.py, read without importing the package (it needs TFX)."""
  with open(os.path.join(_HERE, 'components', 'tfx_preflight', '__init__.py'), encoding='utf-8') as f:
    return re.search(r"^__version__ = '([^']+)'", f.read(), re.MULTILINE).group(1)


def _long_description() -> str:
  """README.md, with links to files of the repository (images, docs) as plain text: an index page has no such files
  to point at, so they would render as broken images and dead links."""
  with open(os.path.join(_HERE, 'README.md'), encoding='utf-8') as f:
    readme = f.read()
  readme = re.sub(r'!\[([^\]]*)\]\((?!https?:)([^)]+)\)', r'*\1 (`\2` in the repository)*', readme)
  return re.sub(r'\[([^\]]+)\]\((?!https?:|#)([^)]+)\)', r'\1', readme)


setup(
    name='tfx-preflight',
    version=_version(),
    description='A TFX component that blocks training on train/eval skew, leakage or a broken loss.',
    long_description=_long_description(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9,<3.11',
    package_dir={'': 'components'},
    packages=find_packages('components'),
    install_requires=STACK,
    extras_require={
        'kfp': [TFX.replace('tfx', 'tfx[kfp]', 1)],
        'dev': ['pytest', 'pytest-xdist', 'pytest-timeout', 'hypothesis', 'ruff', 'pandas', 'scikit-learn',
                'matplotlib'],
    },
    entry_points={'console_scripts': ['tfx-preflight=tfx_preflight.cli:main']},
    classifiers=[
        'Development Status :: 4 - Beta',
        'Intended Audience :: Developers',
        'Intended Audience :: Science/Research',
        'Operating System :: POSIX :: Linux',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.9',
        'Programming Language :: Python :: 3.10',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
