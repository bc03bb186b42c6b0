"""Every notebook in notebooks/ is executed by the test suite (and a coverage test enforces it).

The kernel is pinned to the interpreter running pytest: a kernelspec written into a temporary
directory launches ``sys.executable -m ipykernel_launcher``, found by a ``KernelSpecManager`` that
looks only there, so a user-level or system ``python3`` kernelspec pointing at another Python can
never be picked up. The kernel runs matplotlib's inline backend (:data:`BACKEND`): no display is
needed, and a figure shown with ``plt.show()`` becomes a PNG output, as in Jupyter.

Each notebook that executes cleanly is also written, with its outputs, to ``docs/_build/executed/``
(:data:`EXECUTED_DIR`): the documentation build (``docs/conf.py``) renders those copies instead of
executing the notebooks a second time, and executes a notebook itself only when its copy is
missing or older than the notebook or the ``unigen`` sources.
"""

import json
import os
import resource
import sys
import time
from pathlib import Path

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
EXECUTED_DIR = NOTEBOOKS_DIR.parent / "docs" / "_build" / "executed"

NOTEBOOKS = [
    "00_quickstart.ipynb",
    "01_belief_nets_and_wake_sleep.ipynb",
    "02_objective_algebra.ipynb",
    "03_gans_and_the_unified_view.ipynb",
    "04_gradient_estimators.ipynb",
    "05_transferring_techniques.ipynb",
]
"""Every notebook the suite executes; a notebook missing here fails the coverage test."""

WALL_LIMIT_SECONDS = 900
"""A guard against a hung cell, not a speed check: issue 11's target (each notebook <= 90 s on 2
CPU cores) is measured by ``benchmarks/notebooks.py``, never asserted by a timed test. The test
prints each notebook's wall and kernel CPU time with the load average. On this shared machine
both grow with the load (the wall clock waiting for a core, the CPU time with XLA's worker threads
spinning while they wait): notebook 00 took 14 s of kernel CPU at load 5 and 47 s at load 25."""

KERNEL_NAME = "unigen-test-python"
BACKEND = "module://matplotlib_inline.backend_inline"


def test_every_notebook_is_listed():
    found = sorted(path.name for path in NOTEBOOKS_DIR.glob("*.ipynb"))
    missing = sorted(set(found) - set(NOTEBOOKS))
    gone = sorted(set(NOTEBOOKS) - set(found))
    assert not missing, f"notebooks not run by the tests; add them to NOTEBOOKS: {missing}"
    assert not gone, f"NOTEBOOKS lists files that do not exist in {NOTEBOOKS_DIR}: {gone}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_without_outputs(name):
    notebook = json.loads((NOTEBOOKS_DIR / name).read_text(encoding="utf-8"))
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{name} cell {index} is stored with outputs"
            assert cell.get("execution_count") is None, (
                f"{name} cell {index} is stored with execution_count={cell['execution_count']}"
            )


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """A directory holding one kernelspec that runs this very interpreter."""
    pytest.importorskip("ipykernel")
    directory = tmp_path_factory.mktemp("kernels")
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "unigen tests (this interpreter)",
        "language": "python",
        "env": {"MPLBACKEND": BACKEND},
    }
    (directory / KERNEL_NAME).mkdir()
    (directory / KERNEL_NAME / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return directory


def _execute(notebook, kernel_dir: Path, cwd: Path) -> float:
    """Runs ``notebook`` in place in a fresh kernel from ``kernel_dir``, shuts the kernel down and
    returns the kernel's CPU time (user + sys, seconds): the children of this process reaped
    meanwhile, which is the kernel alone, as the tests run one at a time."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)], ensure_native_kernel=False)
    manager = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
    client = NotebookClient(notebook, km=manager, timeout=WALL_LIMIT_SECONDS,
                            resources={"metadata": {"path": str(cwd)}})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    client.execute(cleanup_kc=True)  # we own the manager: have nbclient shut the kernel down
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _text(cell) -> str:
    return "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")


@pytest.mark.slow
def test_kernel_is_this_interpreter_with_inline_figures(kernel_dir, tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[new_code_cell(
        "import os, sys, matplotlib\n"
        "print(sys.executable)\n"
        "print(os.getcwd())\n"
        "print(matplotlib.get_backend().lower())"
    ), new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()")])
    _execute(notebook, kernel_dir, tmp_path)
    nbformat.validate(notebook)
    executable, cwd, backend = _text(notebook.cells[0]).split("\n")[:3]
    assert Path(executable).resolve() == Path(sys.executable).resolve()
    assert Path(cwd).resolve() == tmp_path.resolve()
    assert backend == BACKEND
    figures = [output for output in notebook.cells[1].outputs if "image/png" in output.get("data", {})]
    assert len(figures) == 1, notebook.cells[1].outputs


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, kernel_dir):
    import nbformat

    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    began, load = time.perf_counter(), os.getloadavg()[0]
    cpu = _execute(notebook, kernel_dir, NOTEBOOKS_DIR)  # a failing cell raises CellExecutionError
    seconds = time.perf_counter() - began
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert not errors, errors
    EXECUTED_DIR.mkdir(parents=True, exist_ok=True)  # outputs without errors: the docs can show them
    partial = EXECUTED_DIR / f".{name}.partial"
    nbformat.write(notebook, partial)
    partial.replace(EXECUTED_DIR / name)  # atomic: the docs build never reads a half-written copy
    print(f"{name}: {cpu:.1f} s of kernel CPU, {seconds:.1f} s wall, load average {load:.1f} at the start")
    stderr = "".join(output.text for cell in notebook.cells if cell.cell_type == "code"
                     for output in cell.outputs if output.output_type == "stream" and output.name == "stderr")
    for noise in ("TqdmWarning", "IProgress not found"):  # tqdm.auto without ipywidgets
        assert noise not in stderr, f"{name} prints a progress-bar warning: {stderr[:500]}"
