"""``python -m mlsysim``: the command line (``python -m mlsysim eval ResNet50 A100``)."""

import sys

from .cli import main

sys.exit(main())
