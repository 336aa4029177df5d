"""Text search in a real browser on an image dataset without CLIP: the page says the class
names answer, in which mode, and the photo a query names comes first."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.test_pages_browser import _expect, open_page
from tests.helpers.photos import add_photo_dataset


@pytest.fixture(scope="module")
def photos_home(tmp_path_factory, demo_home: Path) -> Path:
    home = tmp_path_factory.mktemp("e2e-photos") / "home"
    shutil.copytree(demo_home, home)
    add_photo_dataset(home)
    return home


@pytest.fixture(scope="module")
def photos_url(module_served_app, photos_home) -> str:
    return module_served_app(photos_home)


def test_a_text_query_ranks_photos_by_what_they_show_without_clip(browser_page, photos_url, wait_idle):
    page, expect = browser_page, _expect()
    open_page(page, photos_url, "text_search", "photos", wait_idle)
    expect(page.get_by_text(re.compile(r"Answered by class-names: ImageNet class names")).first).to_be_visible()
    expect(page.get_by_role("radio", name="Hybrid (meaning + words)")).to_be_checked()
    for query, photo in (("a cup of coffee", "coffee"), ("a cat", "chelsea")):
        box = page.get_by_label("Describe what you are looking for")
        box.fill(query)
        box.press("Enter")
        first = page.locator(".cg-tile").first
        expect(first).to_have_attribute("title", re.compile(rf"^{photo}\n(.|\n)*matched by class-names"))
        expect(first.locator(".cg-badge")).to_have_text(re.compile(r"^\d\.\d{3}$"))
        expect(first.locator(".cg-tag")).to_have_text("class-names")  # what answered, on the card
        expect(first.locator("img")).to_be_visible()  # the photo itself, not a text card
        wait_idle(page)
