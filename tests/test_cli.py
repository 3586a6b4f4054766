import subprocess
import sys

from tfod_seg.cli import main


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from tfod_seg.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('tensorflow', 'official', 'numpy', 'cv2', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out, out


def test_python_dash_m_entry_point_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "tfod_seg", "--help"], capture_output=True, text=True, check=True).stdout
    assert "tfod-seg" in out
    assert "convert" in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
