import subprocess
import sys

from tfod_seg.cli import main


HEAVY = ("tensorflow", "official", "object_detection", "cv2", "pycocotools", "matplotlib", "apache_beam",
         "google.cloud", "tf2onnx", "onnxruntime", "numpy", "PIL", "lxml")


def test_help_of_every_command_imports_no_heavy_stack():
    # One interpreter: `tfod-seg --help` and every `tfod-seg COMMAND --help` (which builds all
    # parsers); then no heavy module may be loaded.
    code = (
        "import sys\n"
        "before = set(sys.modules)  # namespace stubs from .pth files (google.cloud) load at start-up\n"
        "from tfod_seg.cli import SUBCOMMANDS, main\n"
        "for argv in [['--help']] + [[c, '--help'] for c in SUBCOMMANDS]:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"heavy = [h for h in {HEAVY!r} if any(m == h or m.startswith(h + '.') for m in set(sys.modules) - before)]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out, out[-2000:]


def test_a_missing_subcommand_module_fails_loudly(monkeypatch):
    import pytest

    import tfod_seg.cli as cli

    monkeypatch.setattr(cli, "SUBCOMMANDS", cli.SUBCOMMANDS + ["no_such"])
    with pytest.raises(ModuleNotFoundError, match="tfod_seg.cli.no_such_cmd"):
        cli.build_parser()


def test_python_dash_m_entry_point_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "tfod_seg", "--help"], capture_output=True, text=True, check=True).stdout
    assert "tfod-seg" in out
    assert "convert" in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2


def test_cli_pixel_limit_default_matches_the_library():
    from tfod_seg.cli._common import DEFAULT_MAX_PIXELS
    from tfod_seg.data.images import DEFAULT_MAX_PIXELS as LIB

    assert DEFAULT_MAX_PIXELS == LIB


def _console(tmp_path, argv, import_tf: bool):
    # A tf.data iterator with autotuning left alive at exit, as after `tfod-seg train` / `demo`:
    # the interpreter's teardown would wait for its autotune thread (up to a minute).
    code = (
        "import atexit, logging, sys\n"
        + ("import tensorflow as tf\n"
           "it = iter(tf.data.Dataset.range(10**6).map(lambda x: x + 1, num_parallel_calls=tf.data.AUTOTUNE)"
           ".prefetch(tf.data.AUTOTUNE))\n"
           "next(it)\n" if import_tf else "")
        + "atexit.register(lambda: print('TEARDOWN', flush=True))\n"
        f"logging.basicConfig(filename={str(tmp_path / 'run.log')!r}, level=logging.INFO)\n"
        "logging.getLogger('tfod_seg.test').info('LOGGED')\n"
        f"sys.argv = ['tfod-seg'] + {argv!r}\n"
        "from tfod_seg.cli import console_main\n"
        "console_main()\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_console_script_flushes_then_skips_tensorflow_teardown(tmp_path):
    done = _console(tmp_path, ["templates"], import_tf=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "garden_cpu_demo" in done.stdout  # the command's output is flushed
    assert "TEARDOWN" not in done.stdout  # os._exit: no interpreter teardown
    assert "LOGGED" in (tmp_path / "run.log").read_text()  # log files are flushed and closed
    failed = _console(tmp_path, ["export", "--pipeline_config_path", str(tmp_path / "missing.yaml"),
                                 "--trained_checkpoint_dir", str(tmp_path), "--output_directory", str(tmp_path / "o")],
                      import_tf=True)
    assert failed.returncode == 2 and "error:" in failed.stderr and "missing.yaml" in failed.stderr


def test_console_script_without_tensorflow_exits_normally(tmp_path):
    done = _console(tmp_path, ["templates"], import_tf=False)
    assert done.returncode == 0 and "garden_cpu_demo" in done.stdout
    assert "TEARDOWN" in done.stdout
