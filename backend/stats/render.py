"""Bulletins and assessments as printable reports: charts (matplotlib), HTML and PDF.

A stored bulletin or assessment becomes a ``Report`` (sections of sentences, tables and
charts), which is laid out as an HTML page or an A4 PDF. Charts are PNGs drawn by
matplotlib with the Agg backend, in the same CJK TrueType font the PDF uses
(``backend.documents.pdf.find_cjk_font``), registered with matplotlib's font manager.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape
from typing import Any

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
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

from backend.documents.pdf import CHINA_STANDARD_TIME, _register_font, find_cjk_font

RED = "#c00000"
GREY = "#555555"
SERIES_COLOURS = ("#c00000", "#7f7f7f", "#2f5597")
PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN_X = 22 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN_X


@dataclass(frozen=True)
class Chart:
    title: str
    png: bytes


@dataclass(frozen=True)
class Section:
    heading: str
    sentences: tuple[str, ...] = ()
    table: tuple[tuple[str, ...], ...] = ()
    charts: tuple[Chart, ...] = ()


@dataclass(frozen=True)
class Report:
    title: str
    issue: str
    issuer: str
    issued_on: str
    sections: tuple[Section, ...] = field(default_factory=tuple)


# Charts


@functools.cache
def _chart_font(path: str) -> str:
    """Register the font file with matplotlib once; return its family name."""
    font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=path).get_name()


def _figure(width: float = 7.0, height: float = 2.5) -> Figure:
    figure = Figure(figsize=(width, height), dpi=150, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def grouped_bars(
    font_path: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    ylabel: str,
    percent: bool = False,
) -> bytes:
    """Bars per category, one per series, labelled with their values."""
    family = _chart_font(font_path)
    figure = _figure()
    axes = figure.add_subplot()
    count = len(series)
    width = 0.8 / max(count, 1)
    for index, (name, values) in enumerate(series):
        offsets = [i - 0.4 + width * (index + 0.5) for i in range(len(categories))]
        bars = axes.bar(offsets, values, width * 0.92, label=name, color=SERIES_COLOURS[index % 3])
        labels = [f"{v:.1f}%" if percent else f"{v:g}" for v in values]
        axes.bar_label(bars, labels=labels, fontsize=6, padding=1, fontfamily=family)
    axes.set_xticks(range(len(categories)), categories, fontfamily=family, fontsize=8)
    axes.set_ylabel(ylabel, fontfamily=family, fontsize=8)
    axes.tick_params(axis="y", labelsize=7)
    axes.spines[["top", "right"]].set_visible(False)
    axes.margins(y=0.15)
    if percent:
        axes.set_ylim(0, 115)
    else:
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(prop={"family": family, "size": 7}, frameon=False, ncols=count, loc="upper right")
    return _png(figure)


# Bulletins and assessments as reports


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _day(text: str) -> str:
    day = date.fromisoformat(text[:10])
    return f"{day.year}年{day.month}月{day.day}日"


def _issued_on(generated_at: str) -> str:
    return _day(datetime.fromisoformat(generated_at).astimezone(CHINA_STANDARD_TIME).isoformat())


def _unit_rows(entries: Sequence[tuple[str, dict[str, Any]]]) -> tuple[tuple[str, ...], ...]:
    header = (
        "单位",
        "受理",
        "办结",
        "办结率",
        "超期",
        "预警",
        "已签收",
        "已消除",
        "发现问题",
        "已整改",
        "证据按时率",
        "网上签名",
        "网上办案率",
    )
    rows = [header]
    for name, ind in entries:
        cases, warnings = ind["cases"], ind["warnings"]
        rows.append(
            (
                name,
                str(cases["registered"]),
                str(cases["closed"]),
                _pct(cases["closure_rate"]),
                str(cases["overdue"]),
                str(warnings["sent"]),
                str(warnings["acknowledged"]),
                str(warnings["resolved"]),
                str(ind["problems"]["found"]),
                str(ind["problems"]["rectified"]),
                _pct(ind["evidence"]["on_time_rate"]),
                str(ind["signatures"]["online"]),
                _pct(ind["online_handling"]["rate"]),
            )
        )
    return tuple(rows)


COMPARISON_LABELS = {
    "cases_registered": "受理案件",
    "cases_closed": "办结案件",
    "cases_overdue": "超期案件",
    "warnings_sent": "预警信息",
    "problems_found": "发现问题",
    "evidence_uploaded": "上传证据",
    "signatures_online": "网上签名",
}


def bulletin_report(data: dict[str, Any], font_path: str) -> Report:
    stats = data["statistics"]
    compared = data["comparisons"]
    names = list(COMPARISON_LABELS)
    comparison_chart = grouped_bars(
        font_path,
        [COMPARISON_LABELS[n] for n in names],
        [
            ("本周", [compared[n]["current"] for n in names]),
            ("上周", [compared[n]["previous"] for n in names]),
            (f"上年同期（{data['last_year_week']}）", [compared[n]["last_year"] for n in names]),
        ],
        ylabel="数量",
    )
    table = (
        ("指标", "本周", "上周", "环比", "上年同期", "同比"),
        *tuple(
            (
                COMPARISON_LABELS[n],
                str(compared[n]["current"]),
                str(compared[n]["previous"]),
                _signed(compared[n]["change_pct"]),
                str(compared[n]["last_year"]),
                _signed(compared[n]["yoy_pct"]),
            )
            for n in names
        ),
    )
    entries = [(c["unit"]["name"], c["indicators"]) for c in stats["children"]]
    if stats["own"]["cases"]["registered"] or stats["own"]["warnings"]["sent"]:
        entries.append((f"{stats['unit']['name']}（本级）", stats["own"]))
    entries.append(("合计", stats["totals"]))
    sections = [
        Section("一、总体情况", tuple(data["sentences"])),
        Section("二、同比环比", table=table, charts=(Chart("主要指标对比", comparison_chart),)),
    ]
    if stats["children"]:
        children = stats["children"]
        chart = grouped_bars(
            font_path,
            [c["unit"]["name"] for c in children],
            [
                ("办结率", [_percent(c["indicators"]["cases"]["closure_rate"]) for c in children]),
                (
                    "证据按时上传率",
                    [_percent(c["indicators"]["evidence"]["on_time_rate"]) for c in children],
                ),
                (
                    "网上办案率",
                    [_percent(c["indicators"]["online_handling"]["rate"]) for c in children],
                ),
            ],
            ylabel="百分比",
            percent=True,
        )
        sections.append(
            Section(
                "三、各单位情况",
                table=_unit_rows(entries),
                charts=(Chart("各单位主要比率", chart),),
            )
        )
    unit = stats["unit"]["name"]
    return Report(
        title="执法监督工作周通报",
        issue=f"{data['week']}期（{_day(data['first_day'])}至{_day(data['last_day'])}）",
        issuer=f"{unit}案件管理中心",
        issued_on=_issued_on(data["generated_at"]),
        sections=tuple(sections),
    )


def assessment_report(data: dict[str, Any], font_path: str) -> Report:
    labels = {
        "closure_rate": "办结率",
        "warning_handling_rate": "预警处置率",
        "evidence_on_time_rate": "证据按时上传率",
        "online_handling_rate": "网上办案率",
        "overdue_free_rate": "未超期率",
        "rectification_rate": "整改率",
    }
    names = list(labels)
    table = (
        ("名次", "单位", *[labels[n] for n in names], "得分"),
        *tuple(
            (
                "—" if row["rank"] is None else str(row["rank"]),
                row["unit"]["name"],
                *[_pct(row["rates"][n]) for n in names],
                "—" if row["score"] is None else f"{row['score']:.2f}",
            )
            for row in data["rows"]
        ),
    )
    weights = "，".join(f"{labels[n]}{data['weights'].get(n, 0):g}" for n in names)
    sections = [
        Section(
            "一、考评办法",
            (
                f"权重：{weights}。",
                "得分 = 100 × Σ(权重 × 比率) ÷ Σ权重，无数据的指标不计入。",
            ),
        ),
        Section("二、考评结果", table=table),
    ]
    scored = [r for r in data["rows"] if r["score"] is not None]
    if scored:
        chart = grouped_bars(
            font_path,
            [r["unit"]["name"] for r in scored],
            [("得分", [r["score"] for r in scored])],
            ylabel="得分",
        )
        sections.append(Section("三、得分对比", charts=(Chart("各单位得分", chart),)))
    return Report(
        title="执法质量月度考评通报",
        issue=f"{int(data['month'][:4])}年{int(data['month'][5:])}月",
        issuer=f"{data['unit']['name']}案件管理中心",
        issued_on=_issued_on(data["generated_at"]),
        sections=tuple(sections),
    )


def _percent(value: float | None) -> float:
    return 0.0 if value is None else round(value * 100, 1)


def _signed(change: float | None) -> str:
    if change is None:
        return "—"
    return f"{'+' if change > 0 else ''}{change:.1f}%"


# HTML

HTML_STYLE = """
body{font-family:"WenQuanYi Micro Hei","Noto Sans SC",sans-serif;max-width:60rem;margin:2rem auto;
color:#1a1a1a;line-height:1.7}
h1{color:#c00000;text-align:center;letter-spacing:.3em;font-size:1.9rem;margin:0}
.issue{text-align:center;color:#555}
.masthead{display:flex;justify-content:space-between;border-bottom:3px solid #c00000;
padding-bottom:.3rem;margin-bottom:1rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border:1px solid #999;padding:.2rem .4rem;text-align:center}
th{background:#f2f2f2}
img{max-width:100%}
"""


def render_html(report: Report) -> str:
    parts = [
        "<!doctype html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{escape(report.title)} {escape(report.issue)}</title>",
        f"<style>{HTML_STYLE}</style></head><body>",
        f"<h1>{escape(report.title)}</h1>",
        f'<p class="issue">{escape(report.issue)}</p>',
        f'<div class="masthead"><span>{escape(report.issuer)}</span>'
        f"<span>{escape(report.issued_on)}</span></div>",
    ]
    for section in report.sections:
        parts.append(f"<h2>{escape(section.heading)}</h2>")
        parts += [f"<p>{escape(sentence)}</p>" for sentence in section.sentences]
        if section.table:
            head, *rows = section.table
            parts.append("<table><thead><tr>")
            parts += [f"<th>{escape(cell)}</th>" for cell in head]
            parts.append("</tr></thead><tbody>")
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
            parts.append("</tbody></table>")
        for chart in section.charts:
            encoded = base64.b64encode(chart.png).decode()
            parts.append(
                f'<figure><img alt="{escape(chart.title)}" src="data:image/png;base64,{encoded}">'
                f"<figcaption>{escape(chart.title)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


# PDF


def render_pdf(report: Report, font_path: str) -> bytes:
    font = _register_font(font_path)
    styles = _styles(font)
    buffer = io.BytesIO()
    frame = Frame(MARGIN_X, 20 * mm, CONTENT_WIDTH, PAGE_HEIGHT - 40 * mm, 0, 0, 0, 0)

    def footer(canvas: Canvas, doc: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(font, 8)
        canvas.setFillColor(colors.HexColor(GREY))
        canvas.drawCentredString(PAGE_WIDTH / 2, 12 * mm, f"— {doc.page} —")
        canvas.restoreState()

    template = BaseDocTemplate(
        buffer,
        pagesize=A4,
        pageTemplates=[PageTemplate(frames=[frame], onPage=footer)],
        title=f"{report.title} {report.issue}",
        author=report.issuer,
    )
    story: list[Flowable] = [
        Paragraph(escape(report.title), styles["title"]),
        Paragraph(escape(report.issue), styles["issue"]),
        Table(
            [
                [
                    Paragraph(escape(report.issuer), styles["meta"]),
                    Paragraph(escape(report.issued_on), styles["meta_right"]),
                ]
            ],
            colWidths=[CONTENT_WIDTH / 2] * 2,
            style=TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0)]),
        ),
        HRFlowable(width="100%", thickness=2, color=colors.HexColor(RED), spaceAfter=8),
    ]
    for section in report.sections:
        story.append(Paragraph(escape(section.heading), styles["heading"]))
        story += [Paragraph(escape(s), styles["body"]) for s in section.sentences]
        if section.table:
            story.append(_pdf_table(section.table, styles))
        for chart in section.charts:
            image = Image(io.BytesIO(chart.png))
            scale = CONTENT_WIDTH / image.imageWidth
            image.drawWidth, image.drawHeight = CONTENT_WIDTH, image.imageHeight * scale
            story.append(
                KeepTogether(
                    [Spacer(0, 4), image, Paragraph(escape(chart.title), styles["caption"])]
                )
            )
    template.build(story)
    return buffer.getvalue()


def _styles(font: str) -> dict[str, ParagraphStyle]:
    def style(name: str, **kw: Any) -> ParagraphStyle:
        return ParagraphStyle(name, fontName=font, wordWrap="CJK", **kw)

    red = colors.HexColor(RED)
    return {
        "title": style("title", fontSize=24, leading=32, alignment=TA_CENTER, textColor=red),
        "issue": style("issue", fontSize=11, leading=18, alignment=TA_CENTER, spaceAfter=6),
        "meta": style("meta", fontSize=10, leading=14),
        "meta_right": style("meta_right", fontSize=10, leading=14, alignment=TA_RIGHT),
        "heading": style("heading", fontSize=13, leading=20, spaceBefore=8, spaceAfter=4),
        "body": style("body", fontSize=10.5, leading=18, firstLineIndent=21),
        "cell": style("cell", fontSize=7.5, leading=10, alignment=TA_CENTER),
        "caption": style("caption", fontSize=8.5, leading=12, alignment=TA_CENTER),
    }


def _pdf_table(rows: Sequence[Sequence[str]], styles: dict[str, ParagraphStyle]) -> Table:
    data = [[Paragraph(escape(cell), styles["cell"]) for cell in row] for row in rows]
    first = CONTENT_WIDTH * (0.16 if len(rows[0]) > 8 else 0.3)
    rest = (CONTENT_WIDTH - first) / (len(rows[0]) - 1)
    table = Table(data, colWidths=[first] + [rest] * (len(rows[0]) - 1), repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#9a9a9a")),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#efefef")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
                ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def cjk_font(configured: str | None) -> str:
    """The CJK font file for charts and PDFs (raises ``FontMissing`` when there is none)."""
    return find_cjk_font(configured)
