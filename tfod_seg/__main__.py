"""`python -m tfod_seg` is the same as the `tfod-seg` console script."""

from tfod_seg.cli import console_main

if __name__ == "__main__":
    console_main()
