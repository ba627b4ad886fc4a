"""The judging app in a real headless Chromium (Debian's `chromium`, driven by Playwright from
PyPI with executable_path; no `playwright install`). Without a browser these tests skip
with the install command, except under CI=true, where a missing browser fails them."""

from __future__ import annotations

import os
import pathlib
import shutil
import sqlite3

import pytest

from tests import judging_util as ju

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = os.environ.get("PVG_SCREENSHOTS")   # e.g. docs/human-judging: keep the PNGs
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
  try:
    from playwright.sync_api import sync_playwright
  except ImportError:
    sync_playwright = None
  if CHROMIUM is None or sync_playwright is None:
    reason = ("needs Chromium and Playwright: apt-get install chromium && "
              "pip install -e '.[test]'")
    if os.environ.get("CI") == "true":
      pytest.fail(f"CI must run the browser tests: {reason}")
    pytest.skip(reason)
  with sync_playwright() as p:
    b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    yield b
    b.close()


@pytest.fixture
def page(browser):
  context = browser.new_context(viewport={"width": 900, "height": 760})
  pg = context.new_page()
  yield pg
  context.close()


def _screenshot(page, tmp_path: pathlib.Path, name: str) -> pathlib.Path:
  path = tmp_path / name
  page.screenshot(path=str(path), full_page=True)
  if SCREENSHOTS:
    pathlib.Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
    shutil.copy(path, pathlib.Path(SCREENSHOTS) / name)
  return path


def _looks_like_a_page(path: pathlib.Path) -> None:
  """A real rendering: a PNG with many distinct colours (text), not a blank frame."""
  from PIL import Image
  img = Image.open(path).convert("RGB")
  assert img.size[0] >= 800 and img.size[1] >= 300
  assert len(img.getcolors(1 << 20) or []) > 50, f"{path} looks blank"


def test_a_judge_judges_the_smoke_game_in_the_browser(page, smoke_campaign, tmp_path):
  source, _ = smoke_campaign
  directory = tmp_path / "campaign"
  directory.mkdir()
  shutil.copy(source / "campaign.json", directory)
  srv = ju.Server(directory).start()
  try:
    judge, link = next(iter(srv.links["judges"].items()))
    page.goto(link)
    page.get_by_role("button", name="Start").wait_for()
    total = int(page.locator("#total").text_content())
    assert total > 0 and "45" in page.locator("#limit").text_content()
    page.get_by_role("button", name="Start").click()
    clicked = []
    for i in range(total):
      page.get_by_text(f"Question {i + 1} of {total}").wait_for()
      assert page.locator("#solution li").count() >= 1
      assert page.locator("#countdown").text_content().endswith(" s")
      if i == 0:
        _looks_like_a_page(_screenshot(page, tmp_path, "judge_question.png"))
      choice = "Correct" if i % 2 else "Incorrect"
      page.get_by_role("button", name=choice, exact=True).click()
      clicked.append(choice.lower())
    page.get_by_text("Thank you").wait_for()
    rows = sqlite3.connect(directory / "judging.db").execute(
        "SELECT answer FROM judgments WHERE judge=? ORDER BY position", (judge,)).fetchall()
    assert [r[0] for r in rows] == clicked

    page.goto(srv.links["admin"])
    page.locator("#judges tbody tr").first.wait_for()
    assert page.locator("#judges tbody tr").count() == len(srv.tokens)
    assert f"{total} / {total}" in page.locator("#judges").text_content()
    _looks_like_a_page(_screenshot(page, tmp_path, "admin.png"))
  finally:
    srv.stop()


def test_countdown_runs_and_disables_the_answer_at_zero(page, tmp_path):
  ju.small_campaign(tmp_path, judges=2, per_judge=3, k=1, limit_s=45)
  srv = ju.Server(tmp_path).start()
  try:
    page.clock.install()
    held = []
    page.route("**/answer", lambda route: held.append(route))   # hold the timeout post
    page.goto(srv.links["judges"]["j01"])
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Question 1 of 3").wait_for()
    assert page.locator("#countdown").text_content() == "45 s"
    page.clock.run_for(20_000)
    assert page.locator("#countdown").text_content() == "25 s"
    assert page.get_by_role("button", name="Correct", exact=True).is_enabled()
    page.clock.run_for(25_500)
    assert page.locator("#countdown").text_content() == "0 s"
    assert page.get_by_role("button", name="Correct", exact=True).is_disabled()
    assert page.get_by_role("button", name="Incorrect").is_disabled()
    assert page.get_by_text("Time is up.").is_visible()
    assert len(held) == 1 and held[0].request.post_data_json["answer"] == "timeout"
    held[0].continue_()
    page.get_by_text("Question 2 of 3").wait_for()
    rows = sqlite3.connect(tmp_path / "judging.db").execute(
        "SELECT position, answer FROM judgments").fetchall()
    assert rows == [(0, "timeout")]
  finally:
    srv.stop()


def test_model_html_is_shown_as_text(page, tmp_path):
  ju.small_campaign(tmp_path, judges=2, per_judge=2, k=1, xss=True)
  srv = ju.Server(tmp_path).start()
  try:
    page.goto(srv.links["judges"]["j01"])
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Question 1 of 2").wait_for()
    assert ju.XSS in page.locator("#solution").text_content()
    assert page.locator("#solution script, #solution img").count() == 0
    assert page.evaluate("window.pwned") is None
  finally:
    srv.stop()


def test_reload_keeps_the_servers_clock(page, tmp_path):
  ju.small_campaign(tmp_path, judges=2, per_judge=2, k=1, limit_s=45)
  srv = ju.Server(tmp_path).start()
  try:
    page.goto(srv.links["judges"]["j01"])
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Question 1 of 2").wait_for()
    first = page.locator("#problem").text_content()
    page.wait_for_timeout(2500)
    page.reload()
    page.get_by_text("Question 1 of 2").wait_for()
    assert page.locator("#problem").text_content() == first
    assert int(page.locator("#countdown").text_content().split()[0]) <= 43
  finally:
    srv.stop()
