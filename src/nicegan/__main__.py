"""``python -m nicegan`` (and ``torchrun -m nicegan``) runs the command line."""

import sys

from nicegan.cli import main

if __name__ == "__main__":
    sys.exit(main())
