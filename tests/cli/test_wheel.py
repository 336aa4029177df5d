"""The built wheel, installed into a fresh venv, gives a working ``catalog``.

The wheel is built from a copy of the checkout's packaging files and ``core/`` (so a
stale ``build/`` in the checkout cannot leak into it), installed into a new venv with
``--no-deps``; the dependencies come from this interpreter's site-packages through a
``.pth`` file. A directory added by a ``.pth`` line has its own ``.pth`` files ignored,
so this checkout's editable install is not active there: ``core`` must come from the
wheel. Every command runs with its cwd in a temp dir outside the checkout.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGING_FILES = ("pyproject.toml", "README.md", "requirements.txt")


def run(cmd: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def dependency_dirs() -> list[str]:
    """This interpreter's site-packages directories (where the dependencies live)."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir() and Path(d).resolve() != REPO]


def has_setuptools_wheel() -> bool:
    """Whether this interpreter's setuptools can build a wheel without the ``wheel`` package."""
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """(new venv's bin dir, a cwd outside the checkout, the wheel's file names)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in PACKAGING_FILES:
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "core", src / "core", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = root / "dist"
    # offline with this interpreter's setuptools when it has one (>= 70.1 builds wheels by
    # itself); else pip fetches the build-system requirements as a user's `pip wheel .` does
    offline = ["--no-build-isolation", "--no-index"] if has_setuptools_wheel() else []
    built = run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", *offline, "-q", "-w", str(dist)],
                cwd=src, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("*.whl")

    venv = root / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                "--no-index", "-q", str(wheel)], cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root)
    (Path(purelib.stdout.strip()) / "catalog_deps.pth").write_text("\n".join(dependency_dirs()) + "\n")

    cwd = root / "elsewhere"
    cwd.mkdir()
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    return venv / "bin", cwd, names


def test_the_wheel_holds_every_package_of_core(installed):
    _, _, names = installed
    packages = sorted(str(p.parent.relative_to(REPO)) for p in (REPO / "core").rglob("__init__.py")
                      if "__pycache__" not in p.parts)
    missing = [pkg for pkg in packages if f"{pkg}/__init__.py" not in names]
    assert not missing, f"packages left out of the wheel: {missing}"


def test_every_subpackage_imports_from_the_installed_wheel(installed):
    bin_dir, cwd, _ = installed
    code = ("import core, pkgutil, importlib\n"
            "print(core.__file__)\n"
            "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
            "    if m.name != 'core.__main__':  # a script: it runs the command\n"
            "        importlib.import_module(m.name)\n"
            "        print(m.name)\n")
    out = run([str(bin_dir / "python"), "-c", code], cwd=cwd, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert Path(lines[0]).resolve().is_relative_to(bin_dir.parent.resolve()), \
        f"core came from {lines[0]}, not from the wheel installed in {bin_dir.parent}"
    imported = set(lines[1:])
    assert {"core.cli", "core.index", "core.embeddings", "core.select", "core.quality"} <= imported


def test_catalog_help_and_demo_help_work_from_the_wheel(installed):
    bin_dir, cwd, _ = installed
    top = run([str(bin_dir / "catalog"), "--help"], cwd=cwd)
    assert top.returncode == 0, top.stderr
    assert "demo" in top.stdout and "serve" in top.stdout
    as_module = run([str(bin_dir / "python"), "-m", "core", "--help"], cwd=cwd)
    assert as_module.returncode == 0 and as_module.stdout == top.stdout, as_module.stderr
    demo = run([str(bin_dir / "catalog"), "demo", "digits", "--help"], cwd=cwd)
    assert demo.returncode == 0, demo.stderr
    assert "usage: catalog demo" in demo.stdout
    assert not (cwd / "catalog-data").exists()  # help creates no workspace


def test_serve_from_the_wheel_says_in_one_line_how_to_run_the_app(installed):
    bin_dir, cwd, _ = installed
    out = run([str(bin_dir / "catalog"), "serve"], cwd=cwd)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("catalog: error: ")
    assert "streamlit run app.py" in lines[0] and "--app" in lines[0]


def test_serve_with_an_app_that_is_not_a_checkout_exits_2_naming_it(installed):
    bin_dir, cwd, _ = installed
    lonely = cwd / "app.py"
    lonely.write_text("print('not the Catalog app')\n")
    out = run([str(bin_dir / "catalog"), "serve", "--app", str(lonely)], cwd=cwd)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"catalog: error: --app {str(lonely)!r} has no pages/ or ui/ beside it; "
        "give the app.py of a Catalog checkout"]
    missing = run([str(bin_dir / "catalog"), "serve", "--app", "nowhere/app.py"], cwd=cwd)
    assert missing.returncode == 2
    assert "'nowhere/app.py' does not exist" in missing.stderr



def test_in_a_checkout_serve_finds_the_app_next_to_the_package(tmp_path):
    from core.cli.data import app_path
    from core.errors import InputError

    assert app_path(None) == REPO / "app.py"
    assert app_path(str(REPO / "app.py")) == REPO / "app.py"
    with pytest.raises(InputError, match="has no pages/ or ui/ beside it"):
        (tmp_path / "app.py").write_text("")
        app_path(str(tmp_path / "app.py"))
