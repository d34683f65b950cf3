"""report.ipynb: the package's template (bench/templates/report.ipynb), executed with nbclient in
the report folder so that it opens with its outputs.

The executed notebook reads the report's own trials.parquet, so it needs no storage URL (and
never holds a password); a user re-points `SOURCE` at the live study to explore further.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from bench import records
from bench.errors import HarnessError

TEMPLATE = "report.ipynb"
TIMEOUT_S = 600


def template() -> "nbformat.NotebookNode":  # type: ignore[name-defined] # noqa: F821
    import nbformat

    text = resources.files("bench").joinpath("templates", TEMPLATE).read_text()
    return nbformat.reads(text, as_version=4)


def execute_notebook(out_dir: Path, source: str = "") -> Path:
    """Execute the template in out_dir (which must hold trials.parquet) and write report.ipynb."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from traitlets.config import Config

    nb = template()
    if source:
        nb.metadata["bench"] = {"study_source": source}  # masked URL, for the reader's information
    package_root = str(Path(__file__).resolve().parents[2])  # the kernel imports this very `bench`
    env = dict(os.environ)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("MPLBACKEND", None)  # the kernel draws inline
    # Optuna imports tqdm.auto, which warns in a kernel without ipywidgets ("IProgress not found");
    # the notebook shows no progress bar, so the warning is noise in every executed report.
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS", ""), "ignore:IProgress not found"]))
    config = Config()
    config.KernelManager.transport_encryption = "auto"  # CurveZMQ between this process and the kernel
    client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", config=config,
                            resources={"metadata": {"path": str(out_dir)}})
    try:
        client.execute(env=env)
    except CellExecutionError as e:
        raise HarnessError(f"the report notebook failed (the other report files are written): {str(e).strip().splitlines()[-1]}") from None
    path = out_dir / "report.ipynb"
    records.atomic_write_bytes(path, nbformat.writes(nb).encode())
    return path
