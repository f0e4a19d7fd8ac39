"""notebooks/explore.ipynb runs top to bottom (it audits sample_data with the real model and
runs a small reference fine-tune with the encoder backend, then selects rows and checks the
selection against random with the same backend)."""

import re

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_explore_notebook_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(REPO / "notebooks" / "explore.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(REPO / "notebooks")}})
    client.execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    texts = " ".join(str(output.get("data", {}).get("text/plain", "")) + str(output.get("text", "")) for output in outputs)
    assert "openai 2991 records" in texts
    assert "ExportSummary(kept=" in texts
    assert 'get_weather({"city": "Berlin", "unit": "celcius"})' in texts and "bad_enum" in texts  # a tool-call finding
    # The contamination evidence: a leaked item named with its eval file, its matched span marked.
    assert "matches benchmark.jsonl item" in texts and "[[" in texts
    assert "fine-tune vs few-shot" in texts and "easy-to-learn" in texts  # confirmation table, data map
    # The selection (its per-cluster line) and its check against random and the full pool, with verdicts.
    assert re.search(r"selected \d+ of a \d+-row pool \(\d+ flagged rows left out\) with diverse", texts)
    for comparison in ("selected-random", "selected-full"):
        assert re.search(comparison + r" +heldout +accuracy .*95% \[.*\] on \d+ rows: (better|worse|no evidence)", texts)
    svgs = [output["data"]["text/html"] for output in outputs if "<svg" in output.get("data", {}).get("text/html", "")]
    assert len(svgs) == 2  # the audit's map and the data map
