#!/usr/bin/env python3
"""Render the example transcript kept under docs/examples/ (all names and data are fictional).

Run from the repository root::

    .venv/bin/python scripts/examples/render_transcript.py

It writes ``docs/examples/transcript.pdf`` with ``backend.documents.pdf.render_pdf`` and
``docs/examples/transcript-page1.png`` with ``pdftoppm -r 100`` (Debian: poppler-utils).
The signature and fingerprint images are drawn here with Pillow, as a tablet would send them.
"""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from backend.documents.pdf import (  # noqa: E402 (after the path set-up)
    PrintBlock,
    PrintDocument,
    PrintSignature,
    render_pdf,
)

OUT = ROOT / "docs" / "examples"

QUESTIONS = (
    (
        "我们是杭州市公安局西湖区分局文三路派出所的民警（出示工作证件），现依法向你询问，"
        "你应当如实回答，对与本案无关的问题，你有拒绝回答的权利。你听清楚了吗？",
        "听清楚了。",
    ),
    ("你的个人情况？", "我叫陈思远，男，1990年3月出生，汉族，大学文化，在一家软件公司上班。"),
    (
        "你今天为什么来派出所？",
        "我来报案。我停在文三路小区楼下的一辆电动自行车被人偷了，想请你们帮忙找回来。",
    ),
    (
        "请你把事情经过详细讲一下。",
        "2026年5月1日晚上七点左右，我下班回家，把电动车停在文三路88号小区3幢楼下的非机动车"
        "停放点，锁好了车锁。第二天早上七点半我下楼准备骑车上班，发现车不见了，地上只留下"
        "被剪断的锁。我在小区里找了一圈没有找到，就问了门卫，门卫说晚上没有注意到。",
    ),
    (
        "被盗电动自行车的具体特征？",
        "是一辆雅迪牌电动自行车，白色，2024年10月在文一路的专卖店买的，花了3280元，"
        "车牌号是杭州A12345，车座后面贴了一张蓝色的反光贴纸，右边后视镜有一道划痕。",
    ),
    ("你有没有购车发票或者其他能证明车辆归你所有的材料？", "有购车发票和行驶证，我今天都带来了。"),
    ("你怀疑是谁偷的？", "我不知道是谁偷的，没有怀疑的对象。"),
    ("小区里有没有监控？", "楼下停车点旁边有一个监控摄像头，物业说可以配合调取录像。"),
    ("你还有什么要补充的吗？", "没有了。"),
    ("以上笔录你看一下，和你说的是否一致？", "以上笔录我看过，和我说的相符。"),
)


def signature_png(seed: float) -> bytes:
    """A handwriting-like stroke in blue-black ink on a transparent background."""
    image = Image.new("RGBA", (600, 200), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    points = [
        (
            40 + t * 5.2,
            100 + 55 * math.sin(t / 6.0 + seed) * math.cos(t / 17.0) + 10 * math.sin(t * seed),
        )
        for t in range(100)
    ]
    draw.line(points, fill=(20, 30, 110, 255), width=7, joint="curve")
    return _png(image)


def fingerprint_png() -> bytes:
    """Concentric ridges in red ink pad colour, like a pressed fingertip."""
    image = Image.new("RGBA", (200, 240), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for ring in range(2, 95, 7):
        box = (100 - ring, 120 - ring * 1.2, 100 + ring, 120 + ring * 1.2)
        draw.ellipse(box, outline=(200, 20, 40, 230), width=3)
    return _png(image)


def _png(image: Image.Image) -> bytes:
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def sample_transcript() -> PrintDocument:
    blocks = [PrintBlock(kind="qa", question=q, answer=a) for q, a in QUESTIONS]
    signed = datetime(2026, 5, 2, 1, 45, tzinfo=UTC)
    return PrintDocument(
        title="询问笔录",
        kind_label="询问笔录",
        case_number="杭西公（文三）行案字〔2026〕00128号",
        unit_name="杭州市公安局西湖区分局文三路派出所",
        header_fields=(
            ("时间", "2026年5月2日9时05分至2026年5月2日9时40分"),
            ("地点", "杭州市公安局西湖区分局文三路派出所询问室"),
            ("询问人", "王建国、刘晓燕"),
            ("工作单位", "文三路派出所"),
            ("记录人", "刘晓燕"),
            ("询问次数", "第1次"),
            ("被询问人", "陈思远"),
            ("性别", "男"),
            ("出生日期", "1990年3月12日"),
            ("身份证件号码", "330106********1234"),
            ("户籍所在地", "浙江省杭州市西湖区文三路88号"),
            ("现住址", "浙江省杭州市西湖区文三路88号3幢2单元501室"),
        ),
        blocks=tuple(blocks),
        signatures=(
            PrintSignature("询问人", "王建国", signed, signature_png(0.3)),
            PrintSignature("记录人", "刘晓燕", signed, signature_png(1.1)),
            PrintSignature("被询问人", "陈思远", signed, signature_png(2.0), fingerprint_png()),
        ),
        content_sha256="9f2c4e1a7b3d5c8e0f6a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d2e",
        verify_url="https://fieldcase.example.cn/api/v1/documents/"
        "3f1e2d4c-5b6a-4978-8c1d-2e3f4a5b6c7d/verify",
        status_label="已签名",
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    pdf = OUT / "transcript.pdf"
    pdf.write_bytes(render_pdf(sample_transcript()))
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "100",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(pdf),
            str(OUT / "transcript-page1"),
        ],
        check=True,
    )
    print(f"wrote {pdf} and {OUT / 'transcript-page1.png'}")


if __name__ == "__main__":
    main()
