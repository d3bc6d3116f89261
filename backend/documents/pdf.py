"""Printable PDFs of documents: transcripts, notices, decisions and seized-item lists.

The renderer is a pure function of a ``PrintDocument``: the documents service gathers the
content, the signatures and the verification link, and this module lays them out on A4 pages
with a CJK TrueType font, page numbers "第 N 页 共 M 页", and on every page a footer with the
content's SHA-256 and a QR code that opens the verification endpoint.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.barcode import qrencoder
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    HRFlowable,
    Image,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

log = logging.getLogger(__name__)

FONT_SETTING = "FIELDCASE_PDF_FONT"
FONT_PACKAGE = "fonts-wqy-microhei"

# TrueType-outline CJK fonts, best first. reportlab cannot read OpenType/CFF outlines, so the
# .otf/.ttc files of Debian's fonts-noto-cjk do not qualify; Noto Sans SC as a static TTF does.
SYSTEM_FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansSC-Regular.ttf",
    "/usr/share/fonts/truetype/noto-sans-sc/NotoSansSC-Regular.ttf",
    "/usr/local/share/fonts/NotoSansSC-Regular.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/simhei.ttf",
)

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
BLOCK_KINDS = frozenset({"paragraph", "qa", "heading", "table"})

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN_X = 20 * mm
MARGIN_TOP = 22 * mm
MARGIN_BOTTOM = 38 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN_X
QR_SIZE = 21 * mm
BODY_SIZE = 11
INK = colors.HexColor("#1a1a1a")
MUTED = colors.HexColor("#555555")
RULE = colors.HexColor("#9a9a9a")
HEADER_FILL = colors.HexColor("#efefef")
SIGNATURE_BOX = (46 * mm, 16 * mm)
FINGERPRINT_BOX = (16 * mm, 16 * mm)
SHORT_FIELD_CHARS = 18
# Decoding an image costs width × height × 4 bytes whatever its file size.
MAX_IMAGE_PIXELS = 4096 * 4096

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class FontMissing(Exception):
    """No usable CJK TrueType font was found: PDFs cannot be rendered."""


@dataclass(frozen=True)
class PrintSignature:
    role_label: str
    name: str
    signed_at: datetime
    image_png: bytes
    fingerprint_png: bytes | None = None


@dataclass(frozen=True)
class PrintBlock:
    """One piece of the body; ``rows`` of a table start with its header row."""

    kind: str
    text: str = ""
    question: str = ""
    answer: str = ""
    rows: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class PrintDocument:
    title: str
    kind_label: str
    case_number: str
    unit_name: str
    header_fields: tuple[tuple[str, str], ...]
    blocks: tuple[PrintBlock, ...]
    signatures: tuple[PrintSignature, ...]
    content_sha256: str
    verify_url: str
    status_label: str


def find_cjk_font(configured: str | None = None) -> str:
    """Return the path of a CJK TrueType font reportlab can use.

    The configured path (``FIELDCASE_PDF_FONT``) wins when the file exists; otherwise the
    well-known system locations are tried in order.
    """
    if configured:
        if os.path.isfile(configured):
            _register_font(configured)
            return configured
        log.warning(
            "%s=%s does not exist; looking for a system CJK font.", FONT_SETTING, configured
        )
    for candidate in SYSTEM_FONT_CANDIDATES:
        if not os.path.isfile(candidate):
            continue
        try:
            _register_font(candidate)
        except FontMissing as exc:
            log.warning("Skipping %s: %s", candidate, exc)
            continue
        return candidate
    raise FontMissing(
        "No CJK TrueType font found for PDF rendering. Install the Debian package "
        f"{FONT_PACKAGE} (apt-get install {FONT_PACKAGE}) or set {FONT_SETTING} to the path "
        "of a TrueType (.ttf/.ttc) font with Chinese glyphs, such as Noto Sans SC."
    )


@functools.cache
def _register_font(path: str) -> str:
    """Register the font at ``path`` with reportlab once per process; return its font name."""
    name = "FieldcaseCJK-" + hashlib.sha256(path.encode()).hexdigest()[:12]
    try:
        font = TTFont(name, path, subfontIndex=0) if _is_collection(path) else TTFont(name, path)
    except (TTFError, OSError, ValueError) as exc:
        raise FontMissing(
            f"{path} cannot be used as a PDF font ({exc}). Set {FONT_SETTING} to a TrueType "
            f"(.ttf/.ttc) CJK font, or install the Debian package {FONT_PACKAGE}."
        ) from exc
    pdfmetrics.registerFont(font)
    return name


def _is_collection(path: str) -> bool:
    return path.lower().endswith((".ttc", ".otc"))


def render_pdf(document: PrintDocument, font_path: str | None = None) -> bytes:
    """Render ``document`` as an A4 PDF; ``font_path`` is the configured font, if any."""
    font = _register_font(find_cjk_font(font_path))
    styles = _Styles(font)
    buffer = io.BytesIO()
    frame = Frame(
        MARGIN_X,
        MARGIN_BOTTOM,
        CONTENT_WIDTH,
        PAGE_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
    )
    template = BaseDocTemplate(
        buffer,
        pagesize=A4,
        pageTemplates=[PageTemplate(frames=[frame])],
        title=document.title,
        author=document.unit_name,
        subject=f"{document.kind_label} {document.case_number}",
        creator="Fieldcase",
        initialFontName=font,
    )
    story = [
        *_title_block(document, styles),
        *_body(document.blocks, styles),
        *_signature_section(document.signatures, styles),
    ]
    template.build(
        story,
        canvasmaker=functools.partial(_NumberedCanvas, document=document, font=font),
    )
    return buffer.getvalue()


class _Styles:
    """The paragraph styles of one rendering, all in the CJK font."""

    def __init__(self, font: str) -> None:
        self.font = font

        def style(name: str, **kw: Any) -> ParagraphStyle:
            kw.setdefault("fontSize", BODY_SIZE)
            kw.setdefault("leading", kw["fontSize"] * 1.65)
            kw.setdefault("textColor", INK)
            return ParagraphStyle(name, fontName=font, bulletFontName=font, wordWrap="CJK", **kw)

        hanging = 2 * BODY_SIZE
        self.unit = style("unit", fontSize=14, alignment=TA_CENTER, spaceAfter=4)
        self.title = style("title", fontSize=22, leading=30, alignment=TA_CENTER, spaceAfter=6)
        self.meta_left = style("meta-left", fontSize=9, textColor=MUTED)
        self.meta_right = style("meta-right", fontSize=9, textColor=MUTED, alignment=TA_RIGHT)
        self.field_label = style("field-label", fontSize=10.5, leading=16, textColor=MUTED)
        self.field_value = style("field-value", fontSize=10.5, leading=16)
        self.heading = style("heading", fontSize=12.5, spaceBefore=8, spaceAfter=3)
        self.paragraph = style(
            "paragraph", firstLineIndent=hanging, alignment=TA_JUSTIFY, spaceAfter=3
        )
        self.qa = style("qa", leftIndent=hanging, firstLineIndent=-hanging, spaceAfter=2)
        self.cell = style("cell", fontSize=10, leading=14)
        self.cell_head = style("cell-head", fontSize=10, leading=14, alignment=TA_CENTER)
        self.note = style("note", fontSize=10, textColor=MUTED, alignment=TA_LEFT)

    def table(
        self,
        data: list[list[Any]],
        widths: Sequence[float],
        commands: Sequence[tuple[Any, ...]],
        repeat_rows: int = 0,
    ) -> Table:
        """A table in the CJK font (cells without a Paragraph would fall back to Helvetica)."""
        table = Table(data, colWidths=list(widths), repeatRows=repeat_rows)
        table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), self.font), *commands]))
        return table


def _markup(text: str) -> str:
    """User text as Paragraph markup: escaped, control characters dropped, newlines kept."""
    cleaned = _CONTROL_CHARS.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    return escape(cleaned).replace("\t", " ").replace("\n", "<br/>")


def _title_block(document: PrintDocument, styles: _Styles) -> list[Flowable]:
    meta = styles.table(
        [
            [
                Paragraph(f"案件编号：{_markup(document.case_number)}", styles.meta_left),
                Paragraph(f"状态：{_markup(document.status_label)}", styles.meta_right),
            ]
        ],
        [CONTENT_WIDTH / 2] * 2,
        [
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("RIGHTPADDING", (0, 0), (-1, -1), 0),
            ("TOPPADDING", (0, 0), (-1, -1), 0),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ],
    )
    flowables: list[Flowable] = [
        Paragraph(_markup(document.unit_name), styles.unit),
        Paragraph(_markup(document.title), styles.title),
        meta,
        HRFlowable(width="100%", thickness=1.2, color=INK, spaceBefore=2, spaceAfter=8),
    ]
    if document.header_fields:
        flowables += [
            _header_fields(document.header_fields, styles),
            HRFlowable(width="100%", thickness=0.5, color=RULE, spaceBefore=6, spaceAfter=8),
        ]
    return flowables


def _header_fields(fields: Sequence[tuple[str, str]], styles: _Styles) -> Table:
    """Fields as "label：value" in two columns; a long value takes the whole line."""
    size = styles.field_label.fontSize
    widest = max(pdfmetrics.stringWidth(f"{label}：", styles.font, size) for label, _ in fields)
    label_width = min(widest + 6, 34 * mm)
    value_width = CONTENT_WIDTH / 2 - label_width
    data: list[list[Any]] = []
    spans: list[int] = []
    pending = list(fields)
    while pending:
        label, value = pending.pop(0)
        row = [_field_label(label, styles), Paragraph(_markup(value), styles.field_value)]
        if _is_short(value) and pending and _is_short(pending[0][1]):
            next_label, next_value = pending.pop(0)
            row += [
                _field_label(next_label, styles),
                Paragraph(_markup(next_value), styles.field_value),
            ]
        else:
            spans.append(len(data))
            row += ["", ""]
        data.append(row)
    commands: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    commands += [("SPAN", (1, row), (3, row)) for row in spans]
    return styles.table(data, [label_width, value_width, label_width, value_width], commands)


def _field_label(label: str, styles: _Styles) -> Paragraph:
    return Paragraph(f"{_markup(label)}：", styles.field_label)


def _is_short(value: str) -> bool:
    return len(value) <= SHORT_FIELD_CHARS and "\n" not in value


def _body(blocks: Sequence[PrintBlock], styles: _Styles) -> Iterator[Flowable]:
    for block in blocks:
        if block.kind not in BLOCK_KINDS:
            raise ValueError(f"unknown print block kind {block.kind!r}")
        if block.kind == "heading":
            yield Paragraph(_markup(block.text), styles.heading)
        elif block.kind == "paragraph":
            for line in block.text.splitlines() or [""]:
                yield Paragraph(_markup(line), styles.paragraph)
        elif block.kind == "qa":
            yield Paragraph(f"问：{_markup(block.question)}", styles.qa)
            yield Paragraph(f"答：{_markup(block.answer)}", styles.qa)
        else:
            yield _table(block.rows, styles)


def _table(rows: Sequence[Sequence[str]], styles: _Styles) -> Flowable:
    if not rows:
        return Paragraph("（无）", styles.note)
    columns = max(len(row) for row in rows)
    padded = [list(row) + [""] * (columns - len(row)) for row in rows]
    weights = [min(max(max(len(row[c]) for row in padded), 2), 24) + 2 for c in range(columns)]
    widths = [CONTENT_WIDTH * w / sum(weights) for w in weights]
    data = [[Paragraph(_markup(cell), styles.cell_head) for cell in padded[0]]]
    data += [[Paragraph(_markup(cell), styles.cell) for cell in row] for row in padded[1:]]
    table = styles.table(
        data,
        widths,
        [
            ("GRID", (0, 0), (-1, -1), 0.5, RULE),
            ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
        ],
        repeat_rows=1,
    )
    table.spaceBefore, table.spaceAfter = 4, 8
    return table


def _signature_section(signatures: Sequence[PrintSignature], styles: _Styles) -> list[Flowable]:
    heading = Paragraph("签名捺印", styles.heading)
    if not signatures:
        return [Spacer(1, 6), heading, Paragraph("（尚无签名）", styles.note)]
    head = ["身份", "姓名", "签名", "捺印", "签署时间"]
    data: list[list[Any]] = [[Paragraph(text, styles.cell_head) for text in head]]
    for signature in signatures:
        fingerprint: Any = (
            _fitted_image(signature.fingerprint_png, FINGERPRINT_BOX, signature.name)
            if signature.fingerprint_png
            else Paragraph("—", styles.cell_head)
        )
        data.append(
            [
                Paragraph(_markup(signature.role_label), styles.cell),
                Paragraph(_markup(signature.name), styles.cell),
                _fitted_image(signature.image_png, SIGNATURE_BOX, signature.name),
                fingerprint,
                Paragraph(_format_time(signature.signed_at), styles.cell),
            ]
        )
    widths = [28 * mm, 28 * mm, SIGNATURE_BOX[0] + 6, FINGERPRINT_BOX[0] + 8 * mm]
    widths.append(CONTENT_WIDTH - sum(widths))
    table = styles.table(
        data,
        widths,
        [
            ("GRID", (0, 0), (-1, -1), 0.5, RULE),
            ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("ALIGN", (2, 1), (3, -1), "CENTER"),
            ("TOPPADDING", (0, 1), (-1, -1), 4),
            ("BOTTOMPADDING", (0, 1), (-1, -1), 4),
        ],
        repeat_rows=1,
    )
    return [Spacer(1, 6), KeepTogether([heading, table])]


def _fitted_image(png: bytes, box: tuple[float, float], signer: str) -> Image:
    """The image scaled to fit ``box``, aspect ratio kept, transparency honoured.

    Only the header is read here: a broken or oversized image is refused before decoding.
    """
    try:
        width, height = ImageReader(io.BytesIO(png)).getSize()
    except Exception as exc:  # PIL raises several unrelated types for undecodable bytes
        raise ValueError(f"the signature image of {signer} is not a readable image") from exc
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(f"the signature image of {signer} is too large ({width}×{height})")
    scale = min(box[0] / width, box[1] / height)
    return Image(io.BytesIO(png), width=width * scale, height=height * scale, mask="auto")


def _format_time(moment: datetime) -> str:
    """China Standard Time, as printed on Chinese forms; naive values are taken as UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    local = aware.astimezone(CHINA_STANDARD_TIME)
    return f"{local.year}年{local.month}月{local.day}日<br/>{local:%H:%M:%S}"


class _NumberedCanvas(Canvas):
    """Keeps every page until the end so that each can say "第 N 页 共 M 页"."""

    def __init__(self, *args: Any, document: PrintDocument, font: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._document = document
        self._font = font
        self._qr = _qr_modules(document.verify_url)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for page in self._pages:
            self.__dict__.update(page)
            self._decorate(self._pageNumber, total)
            super().showPage()
        super().save()

    def _decorate(self, number: int, total: int) -> None:
        document = self._document
        self.saveState()
        if number > 1:
            self._running_header(document)
        top = MARGIN_BOTTOM - 5 * mm
        self.setStrokeColor(RULE)
        self.setLineWidth(0.5)
        self.line(MARGIN_X, top, PAGE_WIDTH - MARGIN_X, top)
        self.setFillColor(MUTED)
        self._text_line(
            top - 5 * mm,
            8,
            f"{document.unit_name}　{document.kind_label}　案件编号：{document.case_number}",
        )
        self._text_line(top - 10 * mm, 8, "内容哈希（SHA-256）：")
        self.setFont(self._font, 8)
        self.drawString(
            MARGIN_X + self.stringWidth("内容哈希（SHA-256）：", self._font, 8),
            top - 10 * mm,
            document.content_sha256,
        )
        self._text_line(top - 15 * mm, 7, f"核验：扫描右侧二维码或访问 {document.verify_url}")
        self.setFillColor(INK)
        self.setFont(self._font, 9)
        self.drawCentredString(PAGE_WIDTH / 2, 9 * mm, f"第 {number} 页 共 {total} 页")
        self._draw_qr(PAGE_WIDTH - MARGIN_X - QR_SIZE, top - 3 * mm - QR_SIZE)
        self.restoreState()

    def _draw_qr(self, x: float, y: float) -> None:
        """The QR code, QR_SIZE square, from (x, y) up; the white page around is its quiet zone."""
        module = QR_SIZE / len(self._qr)
        self.setFillColor(colors.black)
        for r, row in enumerate(self._qr):
            bottom = y + QR_SIZE - (r + 1) * module
            column = 0
            for dark, run in itertools.groupby(row):
                length = len(list(run))
                if dark:
                    # A hair taller than a module so that no white seam shows between rows.
                    self.rect(x + column * module, bottom, length * module, module * 1.04, 0, 1)
                column += length

    def _text_line(
        self, y: float, size: float, text: str, room: float = CONTENT_WIDTH - QR_SIZE - 6 * mm
    ) -> None:
        """One line of text cut short with "…" where it would run into what is beside it."""
        text = _CONTROL_CHARS.sub("", re.sub(r"[\t\r\n]+", " ", text))
        self.setFont(self._font, size)
        if self.stringWidth(text) > room:
            while text and self.stringWidth(text + "…") > room:
                text = text[:-1]
            text += "…"
        self.drawString(MARGIN_X, y, text)

    def _running_header(self, document: PrintDocument) -> None:
        baseline = PAGE_HEIGHT - MARGIN_TOP + 8 * mm
        self.setFillColor(MUTED)
        self.setFont(self._font, 8)
        case_number = f"案件编号：{document.case_number}"
        self.drawRightString(PAGE_WIDTH - MARGIN_X, baseline, case_number)
        room = CONTENT_WIDTH - self.stringWidth(case_number) - 8 * mm
        self._text_line(baseline, 8, f"{document.unit_name}　{document.title}（续）", room)
        self.setStrokeColor(RULE)
        self.setLineWidth(0.5)
        self.line(MARGIN_X, baseline - 2 * mm, PAGE_WIDTH - MARGIN_X, baseline - 2 * mm)


def _qr_modules(value: str) -> list[list[bool]]:
    """The QR code of ``value`` (error correction level M) as rows of dark modules."""
    code = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    code.addData(value)
    code.make()
    return [[bool(module) for module in row] for row in code.modules]
