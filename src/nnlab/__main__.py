"""``python -m nnlab`` (and ``torchrun -m nnlab``) runs the CLI."""

import sys

from .cli import main

sys.exit(main())
