"""``make docs`` (tools/docs.py): the output blocks of the README and docs/*.md are what the
code prints now. Each marked block's command runs again and its output, masked for what
varies from run to run (timings, folder stamps), must equal the block; under a BLAS kernel
other than the one that made the page, everything but the numbers must. Blocks that read
MNIST run only with $SCRATCHNET_DATA_DIR; those tagged long only in ``make docs``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("docs_tool", ROOT / "tools" / "docs.py")
docs_tool = sys.modules["docs_tool"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docs_tool)
PAGES = docs_tool.documents([])
TOOL = [sys.executable, str(ROOT / "tools" / "docs.py")]


def made_page(tmp_path: Path, text: str) -> Path:
    """``page.md`` in ``tmp_path`` holding ``text``, its blocks made by the tool."""
    page = tmp_path / "page.md"
    page.write_text(text)
    subprocess.run([*TOOL, str(page)], check=True, capture_output=True)
    return page


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_marker_names_a_block(page):
    lines = page.read_text(encoding="utf-8").split("\n")
    for block in docs_tool.find_blocks(lines, page.name):
        assert block.commands and all(c.strip() for c in block.commands), block
        assert block.end >= block.start


def test_the_masks_keep_what_does_not_vary(tmp_path):
    text = ("     1      0.5413          -         -       0.1      0.3\n"
            " seconds        12.5\n run folder     runs/x-20261202-021330-2\n"
            'point,seconds_mean,best\np1,0.41,1\n{"seconds": 0.41, "epochs": 3}')
    header = " epoch  train loss   val loss  accuracy        lr  seconds\n"
    masked = docs_tool.mask(header + text, tmp_path, {}).splitlines()
    assert masked[1] == "     1      0.5413          -         -       0.1      #.#"
    assert masked[2:] == [" seconds        #.#", " run folder     runs/x-YYYYMMDD-HHMMSS",
                          "point,seconds_mean,best", "p1,#.#,1", '{"seconds": 0.0, "epochs": 3}']


def test_health_lines_are_neither_masked_nor_dropped(tmp_path):
    """``--health``'s lines under an epoch row, as the renderer writes them (a layer 12 too,
    whose line starts as an epoch row does): the masks leave their numbers alone, and
    tools/epochs.py keeps them with their row, the last one's included."""
    from scratchnet.cli.render import health_lines

    def layer(number: int, saturated: float) -> dict:
        return {"layer": number, "activation": "tanh", "mean": -0.011, "std": 0.775,
                "dead": None, "inactive": None, "saturated": saturated,
                "params": {"W": {"grad_norm": 0.89, "update_ratio": 0.016}}}

    header = " epoch  train loss   val loss  accuracy        lr  seconds"
    rows = [f"{epoch:>6}      0.5413     0.1159    95.83%       0.1      0.3" for epoch in (1, 2)]
    health = [health_lines([layer(0, 0.1367 * epoch), layer(12, 0.5)]) for epoch in (1, 2)]
    text = "\n".join([header, rows[0], *health[0], rows[1], *health[1],
                      "             x: completed", " best epoch     2"])
    masked = docs_tool.mask(text, tmp_path, {}).splitlines()
    assert masked[2:5] == health[0] and masked[6:9] == health[1]
    assert masked[5].endswith("      #.#")
    kept = subprocess.run([sys.executable, str(ROOT / "tools" / "epochs.py"), "2"], input=text,
                          capture_output=True, text=True, check=True).stdout.splitlines()
    assert kept == [header, rows[1], *health[1]]


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if "make docs" in p.read_text()],
                         ids=lambda p: p.name)
def test_the_blocks_are_what_the_code_prints_now(page):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "docs.py"), "--check",
                           "--quick", str(page)], capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, f"run `make docs` and review the diff:\n{proc.stdout}"


def test_a_block_is_rewritten_in_place_and_a_stale_one_is_reported(tmp_path):
    """A fenced console transcript and a raw markdown block (what a Python function prints,
    a table say), in a page of their own."""
    page = tmp_path / "page.md"
    page.write_text("# page\n\n<!-- make docs: echo one ;; echo $? -->\n```console\nstale\n```\n\n"
                    "<!-- make docs: python -c \"print('| a |')\" -->\nold table\n"
                    "<!-- /make docs -->\nthe end\n")
    tool = [sys.executable, str(ROOT / "tools" / "docs.py")]
    check = subprocess.run([*tool, "--check", str(page)], capture_output=True, text=True)
    assert check.returncode == 1 and "-stale" in check.stdout and "+$ echo one" in check.stdout
    subprocess.run([*tool, str(page)], check=True, capture_output=True)
    text = page.read_text()
    assert "```console\n$ echo one\none\n$ echo $?\n0\n```" in text
    assert "\n| a |\n<!-- /make docs -->\nthe end\n" in text
    assert text.rstrip().endswith("BLAS kernel -->")
    assert subprocess.run([*tool, "--check", str(page)]).returncode == 0


def test_a_picture_a_marked_command_draws_is_copied_beside_the_page(tmp_path):
    """The page shows ``curves.png``; its marked command trains one epoch of digits and
    draws it as ``docs/curves.png`` in the scratch folder (the file name is what matches):
    rewriting the page copies the picture beside it, a PNG that decodes, and ``--check``
    then passes without comparing the picture's bytes."""
    from PIL import Image

    page = made_page(tmp_path, "<!-- make docs: scratchnet train configs/digits_quickstart.yaml "
                     "--epochs 1 -q ;; scratchnet plot @last -o docs/curves.png -->\n"
                     "```console\n```\n\n![One epoch of digits](curves.png)\n")
    tool = TOOL
    assert "$ scratchnet plot @last -o docs/curves.png\ndocs/curves.png\n" in page.read_text()
    with Image.open(tmp_path / "curves.png") as picture:
        picture.load()
        assert picture.width > 100 and picture.height > 100
    assert docs_tool.png_problem(tmp_path / "curves.png") is None
    assert subprocess.run([*tool, "--check", str(page)], capture_output=True).returncode == 0


def test_a_picture_that_is_missing_broken_or_not_drawn_is_reported(tmp_path):
    """``--check`` refuses a page whose picture is gone or cut short, naming it; a block
    whose command names a picture the page shows but does not write it fails too."""
    page = made_page(tmp_path, "<!-- make docs: python -c \"from PIL import Image; "
                     "Image.new('L', (3, 2)).save('dot.png')\" -->\n```text\n```\n\n"
                     "![A dot](dot.png)\n")
    tool = TOOL
    picture = tmp_path / "dot.png"
    whole = picture.read_bytes()
    assert docs_tool.png_problem(picture) is None
    picture.write_bytes(whole[:-12])  # its end chunk
    check = subprocess.run([*tool, "--check", str(page)], capture_output=True, text=True)
    assert check.returncode == 1 and "page.md:1: the picture" in check.stdout
    assert "dot.png is cut short" in check.stdout
    picture.unlink()
    check = subprocess.run([*tool, "--check", str(page)], capture_output=True, text=True)
    assert check.returncode == 1 and "dot.png cannot be read" in check.stdout
    page.write_text("<!-- make docs: echo dot.png -->\n```text\n```\n\n![A dot](dot.png)\n")
    made = subprocess.run([*tool, str(page)], capture_output=True, text=True)
    assert made.returncode == 1
    assert "page.md:1: the picture dot.png was not written by the command" in made.stdout


@pytest.mark.parametrize("cut", [8, 33, -12])
def test_png_problem_finds_a_cut_or_damaged_file(tmp_path, cut):
    """A PNG cut after its signature, after its header, before its end chunk; one with a
    flipped byte in its image data; a file that is no PNG: each gets a reason."""
    good = next((ROOT / "docs").glob("*.png"))
    data = good.read_bytes()
    broken = tmp_path / "broken.png"
    broken.write_bytes(data[:cut])
    assert docs_tool.png_problem(broken)
    middle = len(data) // 2
    broken.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    assert "damaged" in docs_tool.png_problem(broken)
    broken.write_bytes(b"GIF89a" + data[6:])
    assert docs_tool.png_problem(broken) == "is not a PNG"


def test_a_kernel_block_is_compared_only_under_the_kernel_that_made_it(tmp_path):
    """A block tagged kernel whose words changed: stale under the page's own kernel, not
    compared under another (an untagged one is: its words must hold everywhere)."""
    tool = [sys.executable, str(ROOT / "tools" / "docs.py"), "--check"]
    body = ("<!-- make docs (kernel): echo diverged -->\n```console\n$ echo diverged\n"
            "pruned\n```\n\n")
    page = tmp_path / "page.md"
    page.write_text(body + "<!-- made by make docs with the OtherKernel BLAS kernel -->\n")
    assert subprocess.run([*tool, str(page)], capture_output=True).returncode == 0
    page.write_text(body.replace(" (kernel)", "") +
                    "<!-- made by make docs with the OtherKernel BLAS kernel -->\n")
    assert subprocess.run([*tool, str(page)], capture_output=True).returncode == 1
    page.write_text(body)  # made here, with this machine's kernel; then its words go stale
    subprocess.run(tool[:-1] + [str(page)], check=True, capture_output=True)
    page.write_text(page.read_text().replace("\ndiverged\n", "\npruned\n"))
    assert subprocess.run([*tool, str(page)], capture_output=True).returncode == 1


def test_a_chromium_block_is_skipped_where_there_is_none(tmp_path):
    """Without ``chromium`` on PATH a block tagged chromium is left as it is, with the
    reason; with one it runs (MNIST blocks still need $SCRATCHNET_DATA_DIR)."""
    lines = ["<!-- make docs (chromium): chromium --screenshot=docs/x.png r.html -->", "```console",
             "```", "<!-- make docs (MNIST): scratchnet lr-find configs/mnist_tanh.yaml -->",
             "```text", "```"]
    chromium_block, mnist_block = docs_tool.find_blocks(lines, "page.md")
    assert "needs chromium on PATH" in docs_tool.skipped(chromium_block, {"PATH": str(tmp_path)},
                                                          quick=False)
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    assert docs_tool.skipped(chromium_block, {"PATH": str(tmp_path)}, quick=False) is None
    assert "needs MNIST" in docs_tool.skipped(mnist_block, {"PATH": str(tmp_path)}, quick=False)
