"""`python -m tfod_seg` is the same as the `tfod-seg` console script."""

import sys

from tfod_seg.cli import main

if __name__ == "__main__":
    sys.exit(main())
