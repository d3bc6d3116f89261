"""The printable PDF of documents, checked with real poppler tools (pdftotext, pdftoppm)."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from reportlab.graphics.barcode import qrencoder

from backend.documents import pdf
from backend.documents.pdf import FontMissing, PrintBlock, PrintDocument, PrintSignature

pytestmark = pytest.mark.one_backend  # no database involved

SIGNATURE_INK = (0, 40, 230)
FINGERPRINT_INK = (230, 0, 0)
CONTENT_HASH = hashlib.sha256("询问笔录的冻结内容".encode()).hexdigest()
VERIFY_URL = "https://fieldcase.test/api/v1/documents/0b8a2d9e-4c1f-4b7a-9d3e-5f6a7b8c9d0e/verify"
STORY = (
    "2026年5月1日晚上七点左右，我下班回家，把电动自行车停在小区三幢楼下的非机动车停放点，"
    "锁好了车锁。第二天早上七点半我下楼准备骑车上班，发现车不见了，地上只留下被剪断的锁。"
)
QA = tuple(
    PrintBlock(kind="qa", question=f"第{n}个问题：请你把当时的经过再详细讲一遍？", answer=STORY)
    for n in range(1, 13)
)


def _png(image: Image.Image) -> bytes:
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def signature_png() -> bytes:
    image = Image.new("RGBA", (480, 160), (0, 0, 0, 0))
    ImageDraw.Draw(image).line(
        [(20, 120), (90, 30), (160, 130), (240, 40), (320, 120), (460, 60)],
        fill=(*SIGNATURE_INK, 255),
        width=12,
    )
    return _png(image)


def fingerprint_png() -> bytes:
    image = Image.new("RGBA", (160, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((10, 10, 150, 190), fill=(*FINGERPRINT_INK, 255))
    return _png(image)


SIGNED_AT = datetime(2026, 5, 2, 1, 45, tzinfo=UTC)
SIGNATURES = (
    PrintSignature("询问人", "王建国", SIGNED_AT, signature_png()),
    PrintSignature("记录人", "刘晓燕", SIGNED_AT, signature_png()),
    PrintSignature("被询问人", "陈思远", SIGNED_AT, signature_png(), fingerprint_png()),
)


def transcript(**changes: object) -> PrintDocument:
    document = PrintDocument(
        title="询问笔录",
        kind_label="询问笔录",
        case_number="杭西公（文三）行案字〔2026〕00128号",
        unit_name="杭州市公安局西湖区分局文三路派出所",
        header_fields=(
            ("时间", "2026年5月2日9时05分至9时40分"),
            ("地点", "文三路派出所询问室"),
            ("询问人", "王建国、刘晓燕"),
            ("被询问人", "陈思远"),
        ),
        blocks=QA,
        signatures=SIGNATURES,
        content_sha256=CONTENT_HASH,
        verify_url=VERIFY_URL,
        status_label="已签名",
    )
    return replace(document, **changes)  # type: ignore[arg-type]


def write(tmp_path: Path, document: PrintDocument, name: str = "doc.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(pdf.render_pdf(document))
    return path


def page_count(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    return int(
        next(line for line in info.stdout.splitlines() if line.startswith("Pages:")).split()[1]
    )


def text_of(path: Path, page: int | None = None, *, layout: bool = False) -> str:
    args = ["pdftotext", "-enc", "UTF-8"]
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    if layout:
        args.append("-layout")
    return subprocess.run(
        [*args, str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def compact(text: str) -> str:
    """Text without any whitespace: wrapped lines and CJK spacing do not matter."""
    return "".join(text.split())


def raster(path: Path, page: int, dpi: int) -> Image.Image:
    out = path.with_name(f"{path.stem}-p{page}-{dpi}")
    options = ["-png", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile"]
    subprocess.run(["pdftoppm", *options, str(path), str(out)], check=True)
    png = out.with_suffix(".png")
    assert png.stat().st_size > 0
    with Image.open(png) as image:
        return image.convert("RGB")


def count_pixels(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 60) -> int:
    data = image.tobytes()
    return sum(
        1
        for i in range(0, len(data), 3)
        if all(abs(data[i + k] - colour[k]) <= tolerance for k in range(3))
    )


def test_transcript_text_page_numbers_hash_and_signers_are_extractable(tmp_path):
    path = write(tmp_path, transcript())
    pages = page_count(path)
    assert pages == 2

    whole = compact(text_of(path))
    assert "杭州市公安局西湖区分局文三路派出所" in whole
    assert "询问笔录" in whole
    assert compact("时间：2026年5月2日9时05分至9时40分") in whole
    assert compact("问：第1个问题：请你把当时的经过再详细讲一遍？") in whole
    assert compact(f"问：第{len(QA)}个问题：请你把当时的经过再详细讲一遍？") in whole
    assert whole.count(compact("答：" + STORY)) == len(QA)
    for signature in SIGNATURES:
        assert signature.role_label in whole and signature.name in whole
    assert "2026年5月2日09:45:00" in whole  # 01:45 UTC printed in China Standard Time
    for page in range(1, pages + 1):
        on_page = compact(text_of(path, page))
        # "第 1 页 共 2 页" on paper; pdftotext drops the narrow spaces around the digits.
        assert f"第{page}页共{pages}页" in on_page
        assert CONTENT_HASH in on_page
        assert VERIFY_URL in on_page


def test_page_one_rasterises_to_a_real_page(tmp_path):
    page = raster(write(tmp_path, transcript()), 1, 80)
    empty = transcript(unit_name="", title="", header_fields=(), blocks=(), signatures=())
    blank = raster(write(tmp_path, empty, "empty.pdf"), 1, 80)
    assert page.size == blank.size and page.size[0] == 662  # A4 at 80 dpi
    dark = count_pixels(page, (0, 0, 0), tolerance=110)
    assert dark > 3 * count_pixels(blank, (0, 0, 0), tolerance=110)
    assert dark > 0.02 * page.size[0] * page.size[1]


def test_signature_and_fingerprint_images_are_printed(tmp_path):
    path = write(tmp_path, transcript())
    last = raster(path, page_count(path), 60)
    assert count_pixels(last, SIGNATURE_INK) > 300  # three signatures in blue ink
    assert count_pixels(last, FINGERPRINT_INK) > 100

    unsigned = write(tmp_path, transcript(signatures=()), "unsigned.pdf")
    last_unsigned = raster(unsigned, page_count(unsigned), 60)
    assert count_pixels(last_unsigned, SIGNATURE_INK) == 0
    assert count_pixels(last_unsigned, FINGERPRINT_INK) == 0
    assert "尚无签名" in compact(text_of(unsigned))


def test_no_fingerprint_prints_nothing_red_and_bad_images_are_refused(tmp_path):
    only_officer = transcript(signatures=SIGNATURES[:1])
    path = write(tmp_path, only_officer)
    assert count_pixels(raster(path, page_count(path), 60), FINGERPRINT_INK) == 0
    broken = replace(SIGNATURES[0], image_png=b"\x89PNG not really")
    with pytest.raises(ValueError, match=r"王建国.*not a readable image"):
        pdf.render_pdf(transcript(signatures=(broken,)))
    huge = replace(SIGNATURES[2], fingerprint_png=_png(Image.new("1", (5000, 4000))))
    with pytest.raises(ValueError, match=r"陈思远.*too large"):
        pdf.render_pdf(transcript(signatures=(huge,)))


QR_DPI = 300


def printed_qr(path: Path) -> tuple[list[list[bool]], range, range]:
    """Dark pixels of page 1's bottom-right corner (clear of the footer text), and the rows
    and columns the QR code occupies there: the tallest block of dark rows, then its columns."""
    image = raster(path, 1, QR_DPI).convert("L")
    per_mm = QR_DPI / 25.4
    width, height = image.size
    corner = image.crop((width - round(45 * per_mm), height - round(40 * per_mm), width, height))
    pixels, row_length = corner.tobytes(), corner.size[0]
    dark = [
        [value < 128 for value in pixels[start : start + row_length]]
        for start in range(0, len(pixels), row_length)
    ]
    gap = round(per_mm)
    rows = longest_run([any(row) for row in dark], gap)
    columns = longest_run([any(dark[r][c] for r in rows) for c in range(corner.size[0])], gap)
    assert abs(len(rows) - len(columns)) <= 3, "the QR code is not square"
    return dark, rows, columns


def longest_run(flags: list[bool], gap: int) -> range:
    """The longest stretch of True, bridging runs of False shorter than ``gap``."""
    runs: list[range] = []
    start = end = -1
    for index, flag in enumerate(flags):
        if not flag:
            continue
        if start < 0 or index - end > gap:
            if start >= 0:
                runs.append(range(start, end + 1))
            start = index
        end = index
    runs.append(range(start, end + 1))
    return max(runs, key=len)


def read_grid(printed: tuple[list[list[bool]], range, range], count: int) -> list[list[bool]]:
    """Sample the centre of each of count × count modules."""
    dark, rows, columns = printed
    return [
        [
            dark[rows.start + int((r + 0.5) * len(rows) / count)][
                columns.start + int((c + 0.5) * len(columns) / count)
            ]
            for c in range(count)
        ]
        for r in range(count)
    ]


def encodings(value: str) -> list[list[list[bool]]]:
    """The QR code of ``value`` at each error correction level, as any encoder makes it."""
    grids = []
    for level in "LMQH":
        code = qrencoder.QRCode(None, getattr(qrencoder.QRErrorCorrectLevel, level))
        code.addData(value)
        code.make()
        grids.append([[bool(module) for module in row] for row in code.modules])
    return grids


def encodes(printed: tuple[list[list[bool]], range, range], value: str) -> bool:
    return any(read_grid(printed, len(grid)) == grid for grid in encodings(value))


def test_qr_code_in_the_footer_encodes_the_verify_url(tmp_path):
    other_url = VERIFY_URL.replace("0b8a2d9e", "99999999")
    printed = printed_qr(write(tmp_path, transcript()))
    printed_other = printed_qr(write(tmp_path, transcript(verify_url=other_url), "other.pdf"))
    assert encodes(printed, VERIFY_URL)
    assert not encodes(printed, other_url)
    assert encodes(printed_other, other_url)
    assert not encodes(printed_other, VERIFY_URL)


INJECTION = "<b>不加粗</b> & <font size=40>大</font> 1 < 2 && 3 > 2 &amp; <br/>"


def test_markup_in_user_text_is_printed_literally(tmp_path):
    document = transcript(
        unit_name=f"单位{INJECTION}",
        title=f"标题{INJECTION}",
        case_number=f"编号{INJECTION}",
        header_fields=(("地点", f"地点{INJECTION}"), ("标签<i>&</i>", "值")),
        blocks=(
            PrintBlock(kind="heading", text=f"标题块{INJECTION}"),
            PrintBlock(kind="paragraph", text=f"段落{INJECTION}"),
            PrintBlock(kind="qa", question=f"问题{INJECTION}", answer=f"回答{INJECTION}"),
            PrintBlock(kind="table", rows=(("名称", "备注"), (f"单元格{INJECTION}", "—"))),
        ),
        signatures=(replace(SIGNATURES[0], name=f"姓名{INJECTION}"),),
    )
    text = compact(text_of(write(tmp_path, document)))
    assert "标签<i>&</i>：" in text
    for prefix in ("单位", "标题", "编号", "地点", "标题块", "段落", "问题", "回答"):
        assert prefix + compact(INJECTION) in text, prefix
    assert "单元格" + compact(INJECTION) in text
    assert "姓名" + compact(INJECTION) in text


def test_line_breaks_in_user_text_are_kept(tmp_path):
    document = transcript(
        blocks=(PrintBlock(kind="paragraph", text="第一行内容\n第二行内容\r\n第三行内容\x00"),)
    )
    lines = [line.strip() for line in text_of(write(tmp_path, document)).splitlines()]
    assert {"第一行内容", "第二行内容", "第三行内容"} <= set(lines)


SEIZED_HEADER = ("编号", "名称", "特征", "数量", "备注")


def test_seized_items_table_keeps_rows_together_and_repeats_its_header(tmp_path):
    rows = tuple(
        (str(n), f"物品{n}号", f"黑色，序列号SN{n:05d}", f"{n}件", "扣押") for n in range(1, 61)
    )
    document = transcript(
        title="扣押清单",
        kind_label="扣押清单",
        header_fields=(("扣押地点", "文三路88号"),),
        blocks=(
            PrintBlock(kind="paragraph", text="依法扣押下列物品："),
            PrintBlock(kind="table", rows=(SEIZED_HEADER, *rows)),
        ),
    )
    path = write(tmp_path, document)
    assert page_count(path) >= 2
    layout = text_of(path, layout=True)
    lines = [line.split() for line in layout.splitlines()]
    assert list(SEIZED_HEADER) in lines
    for row in rows:
        assert list(row) in lines, row
    for page in (1, 2):
        page_lines = [line.split() for line in text_of(path, page, layout=True).splitlines()]
        assert list(SEIZED_HEADER) in page_lines


def test_empty_table_and_unknown_block_kind(tmp_path):
    empty = transcript(blocks=(PrintBlock(kind="table"),))
    assert "（无）" in compact(text_of(write(tmp_path, empty)))
    with pytest.raises(ValueError, match="picture"):
        pdf.render_pdf(transcript(blocks=(PrintBlock(kind="picture"),)))


def test_font_missing_names_the_setting_and_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf, "SYSTEM_FONT_CANDIDATES", (str(tmp_path / "absent.ttc"),))
    missing = str(tmp_path / "configured-but-missing.ttf")
    with pytest.raises(FontMissing) as raised:
        pdf.find_cjk_font(missing)
    assert "FIELDCASE_PDF_FONT" in str(raised.value)
    assert "fonts-wqy-microhei" in str(raised.value)
    with pytest.raises(FontMissing):
        pdf.render_pdf(transcript(), font_path=missing)


def test_configured_font_is_used_and_embedded(tmp_path, monkeypatch):
    system_font = Path(pdf.find_cjk_font())
    configured = tmp_path / f"configured{system_font.suffix}"
    configured.write_bytes(system_font.read_bytes())
    monkeypatch.setattr(pdf, "SYSTEM_FONT_CANDIDATES", ())
    assert pdf.find_cjk_font(str(configured)) == str(configured)
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf.render_pdf(transcript(), font_path=str(configured)))
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True)
    font_rows = [line.split() for line in fonts.stdout.splitlines()[2:]]
    assert font_rows and all(row[-5] == "yes" for row in font_rows), fonts.stdout


def test_unusable_configured_font_is_refused_and_candidates_are_tried_in_order(
    tmp_path, monkeypatch
):
    not_a_font = tmp_path / "broken.ttf"
    not_a_font.write_bytes(b"this is not a font")
    system_font = pdf.find_cjk_font()
    with pytest.raises(FontMissing, match=r"broken\.ttf"):
        pdf.find_cjk_font(str(not_a_font))
    monkeypatch.setattr(
        pdf, "SYSTEM_FONT_CANDIDATES", (str(tmp_path / "absent.ttc"), str(not_a_font), system_font)
    )
    assert pdf.find_cjk_font(str(tmp_path / "missing.ttf")) == system_font
