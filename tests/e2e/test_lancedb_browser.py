"""The pages in a real browser on an embedding whose index is a LanceDB table (IVF_PQ):
similarity search ranks with exact scores, and label review shows its queue, as on FAISS."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.embeddings import load_embedding, rebuild_index
from core.workspace import open_workspace
from tests.e2e.test_pages_browser import _expect, open_page

pytest.importorskip("lancedb")

EMB = "efficientnet-lite0"


@pytest.fixture(scope="module")
def lance_copy(tmp_path_factory, demo_home: Path) -> Path:
    """The demo workspace with digits' image embedding indexed in LanceDB."""
    home = tmp_path_factory.mktemp("e2e-lance") / "home"
    shutil.copytree(demo_home, home)
    info = rebuild_index(open_workspace(home).dataset("digits"), EMB, kind="ivf_pq", backend="lancedb")
    assert info.index_backend == "lancedb"
    return home


@pytest.fixture(scope="module")
def lance_url(module_served_app, lance_copy) -> str:
    return module_served_app(lance_copy)


def test_similarity_and_label_review_on_a_lancedb_index(browser_page, lance_url, lance_copy, wait_idle):
    page, expect = browser_page, _expect()
    ds = open_workspace(lance_copy).dataset("digits")
    emb = load_embedding(ds, EMB)
    ids, vectors = [str(i) for i in emb.ids], np.asarray(emb.vectors)
    anchor = min(ids)
    cosine = vectors @ vectors[ids.index(anchor)]
    best = [ids[i] for i in np.argsort(-cosine) if ids[i] != anchor][:1]
    open_page(page, lance_url, "similarity", "digits", wait_idle)
    page.get_by_label("Row ids").fill(anchor)
    page.get_by_role("button", name="Add as anchors").click()
    first = page.locator(".cg-tile").first
    expect(first).to_have_attribute("title", re.compile(rf"^{re.escape(best[0])}\n"))
    score = f"{float(np.sort(cosine)[-2]):.3f}"
    expect(first.locator(".cg-badge")).to_have_text(score)  # the exact cosine of the nearest row
    wait_idle(page)
    open_page(page, lance_url, "quality", "digits", wait_idle)
    expect(page.get_by_text(re.compile(r"1,797 labelled rows scored"))).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"^Accept ")).first).to_be_visible()
    expect(page.get_by_text("Nearest rows (label · similarity):").first).to_be_visible()
