"""The tutorials in examples/ run: each notebook is executed top to bottom, and its figures come out inline.

Executed as a reader's Jupyter would (nbclient, the ``python3`` kernel of this environment), in a
scratch folder with a scratch LLM cache, small sizes and fixed seeds as written in the notebooks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))


def test_there_are_tutorials() -> None:
    assert len(NOTEBOOKS) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_inline_figures(path: Path, tmp_path, monkeypatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("HVAE_CACHE_DIR", str(tmp_path / "cache"))
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # kept clean
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    figure_cells = [cell for cell in notebook.cells if cell.cell_type == "code" and ".plot" in cell.source]
    assert len(images) >= len(figure_cells) > 0, f"{path.name}: {len(images)} inline images for {len(figure_cells)} figure cells"
    assert list(tmp_path.glob("runs")) == []  # the tutorials run in memory
