"""The demo city: one city bureau, two districts, four stations, every role, ~20 cases.

Administrative cases past the notification carry their notification record
(行政处罚告知笔录), signed by two officers and the party on the officer's phone:
a decision cannot be approved without it.
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from datetime import timedelta
from itertools import pairwise
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.cases import service as cases
from backend.cases.models import Case, CasePerson
from backend.common import utcnow
from backend.devices import service as devices
from backend.documents import service as documents
from backend.org import service as org
from backend.org.models import Unit, User
from backend.workflow import service as workflow
from shared import signing
from shared.enums import CaseType, Decision, PersonRole, Role, SignerRole, UnitTier
from shared.templates import SIGNATURE_PURPOSE, format_time, signature_fields

DEMO_PASSWORD = "fieldcase-demo"

DISTRICTS = [
    (
        "DC",
        "东城分局",
        "Dongcheng District Bureau",
        [("DC01", "东门派出所", "Dongmen Station"), ("DC02", "南湖派出所", "Nanhu Station")],
    ),
    (
        "XC",
        "西城分局",
        "Xicheng District Bureau",
        [("XC01", "西街派出所", "Xijie Station"), ("XC02", "北山派出所", "Beishan Station")],
    ),
]

# Steps to take after acceptance: (action, payload, decisions for each approval stage).
NOTIFY = (
    "notify",
    {
        "facts": "当事人在公共场所殴打他人。",
        "reasons_and_basis": "治安管理处罚法第43条",
        "hearing_requested": False,
    },
    [],
)
DECISION = (
    "submit_decision",
    {"penalty": "fine", "penalty_detail": "罚款五百元"},
    ["approve", "approve"],
)
ADMIN_PATHS: list[list[tuple[str, dict[str, Any], list[str]]]] = [
    [],
    [("start_investigation", {}, [])],
    [("start_investigation", {}, []), NOTIFY],
    [("start_investigation", {}, []), NOTIFY, (DECISION[0], DECISION[1], [])],
    [("start_investigation", {}, []), NOTIFY, (DECISION[0], DECISION[1], ["approve"])],
    [("start_investigation", {}, []), NOTIFY, DECISION],
    [("start_investigation", {}, []), NOTIFY, (DECISION[0], DECISION[1], ["return"])],
    [
        ("start_investigation", {}, []),
        NOTIFY,
        DECISION,
        ("execute", {"served_at": "2026-01-05T10:00:00+08:00"}, []),
        ("close", {}, []),
    ],
]
CRIMINAL_PATHS: list[list[tuple[str, dict[str, Any], list[str]]]] = [
    [("start_filing_review", {}, [])],
    [("start_filing_review", {}, []), ("file_case", {"charge": "盗窃罪"}, [])],
    [
        ("start_filing_review", {}, []),
        ("file_case", {"charge": "盗窃罪"}, ["approve", "approve"]),
        ("start_investigation", {}, []),
    ],
    [
        ("start_filing_review", {}, []),
        ("file_case", {"charge": "诈骗罪"}, ["approve", "approve"]),
        ("start_investigation", {}, []),
        ("conclude_investigation", {"summary": "证据确实充分"}, []),
    ],
]
CATEGORIES = [
    ("治安", "fight", "两人在夜市因琐事发生争执并互殴。"),
    ("盗窃", "theft", "报警人称其电动车在小区楼下被盗。"),
    ("诈骗", "fraud", "报警人称接到冒充客服电话被骗转账。"),
    ("噪音", "noise", "邻居深夜持续高声播放音乐。"),
]


STREETS = ["人民路", "解放路", "滨江路", "中山路"]
SIGNATURE_STROKES = [
    [[6, 30, 0], [18, 8, 120], [30, 30, 240], [42, 10, 360]],
    [[50, 22, 700], [70, 18, 820], [92, 24, 940]],
]
NOTIFICATION = {
    "header": {"place": "派出所询问室"},
    "sections": {
        "facts": "当事人在公共场所殴打他人。",
        "basis": "《中华人民共和国治安管理处罚法》第四十三条第一款。",
        "proposed_penalty": "罚款五百元。",
        "statement": "我不陈述、申辩，不要求听证。",
    },
}


def _id_number(rng: random.Random, region: str) -> str:
    """A made-up 18-character resident ID number (region, birth date, serial, check)."""
    birth = f"{rng.randint(1960, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    return f"{region}{birth}{rng.randint(100, 999)}{rng.choice('0123456789X')}"


def _user(unit: Unit, suffix: str, name: str, roles: set[Role]) -> User:
    return org.create_user(
        username=f"{unit.code.lower()}.{suffix}",
        display_name=name,
        password=DEMO_PASSWORD,
        unit=unit,
        roles=roles,
    )


def seed(rng: random.Random | None = None) -> dict[str, int]:
    rng = rng or random.Random(2026)
    city = org.create_root_unit(code="SZ", name="示范市公安局", name_en="Demo City Police Bureau")
    users = [
        _user(city, "admin", "系统管理员", {Role.ADMIN}),
        _user(city, "centre", "市局案管中心", {Role.CASE_MANAGER}),
        _user(city, "legal", "市局法制支队", {Role.LEGAL_OFFICER}),
    ]
    stations: list[tuple[Unit, dict[str, User]]] = []
    units = 1
    for code, name, name_en, station_specs in DISTRICTS:
        district = org.create_unit(
            users[0],
            code=code,
            name=name,
            name_en=name_en,
            tier=UnitTier.DISTRICT,
            parent_id=city.id,
        )
        units += 1
        users += [
            _user(district, "centre", f"{name}案管中心", {Role.CASE_MANAGER}),
            _user(district, "leader", f"{name}领导", {Role.LEADER}),
        ]
        for s_code, s_name, s_name_en in station_specs:
            station = org.create_unit(
                users[0],
                code=s_code,
                name=s_name,
                name_en=s_name_en,
                tier=UnitTier.STATION,
                parent_id=district.id,
            )
            units += 1
            staff = {
                "officer": _user(station, "officer", f"{s_name}民警甲", {Role.OFFICER}),
                "officer2": _user(station, "officer2", f"{s_name}民警乙", {Role.OFFICER}),
                "legal": _user(station, "legal", f"{s_name}法制员", {Role.LEGAL_OFFICER}),
                "leader": _user(station, "leader", f"{s_name}所长", {Role.LEADER}),
            }
            users += staff.values()
            stations.append((station, staff))
    paths = [(CaseType.ADMINISTRATIVE, p) for p in ADMIN_PATHS] + [
        (CaseType.CRIMINAL, p) for p in CRIMINAL_PATHS
    ]
    count = 0
    for index in range(20):
        station, staff = stations[index % len(stations)]
        case_type, path = paths[index % len(paths)]
        _demo_case(rng, staff, case_type, path, index)
        count += 1
    return {"units": units, "users": len(users), "cases": count}


def _demo_case(
    rng: random.Random,
    staff: dict[str, User],
    case_type: CaseType,
    path: list[tuple[str, dict[str, Any], list[str]]],
    index: int,
) -> None:
    officer = staff["officer"]
    category, _, summary = CATEGORIES[index % len(CATEGORIES)]
    incident, _ = cases.create_incident(
        officer,
        {
            "id": None,
            "occurred_at": utcnow() - timedelta(hours=rng.randint(2, 400)),
            "place": f"示范市{rng.choice(STREETS)}{rng.randint(1, 300)}号",
            "latitude": 30.0 + rng.random(),
            "longitude": 120.0 + rng.random(),
            "source": rng.choice(["dispatch", "walk_in", "patrol"]),
            "category": category,
            "summary": summary,
            "reporter": {
                "name": rng.choice(["张伟", "王芳", "李娜", "刘洋"]),
                "phone": f"138{rng.randint(10_000_000, 99_999_999)}",
                "id_number": _id_number(rng, "110101"),
            },
        },
    )
    case, _ = cases.accept_incident(
        officer, incident, case_type=case_type, title=f"{category}案 {index + 1}", case_id=None
    )
    suspect, _ = cases.add_person(
        officer,
        case,
        {
            "id": None,
            "role": PersonRole.SUSPECT,
            "name": rng.choice(["赵强", "孙磊", "周杰"]),
            "id_number": _id_number(rng, "330102"),
            "phone": f"139{rng.randint(10_000_000, 99_999_999)}",
            "address": "示范市东城区人民路88号",
        },
    )
    for action, payload, decisions in path:
        outcome = workflow.request_step(
            officer, case, action_name=action, comment=None, payload=dict(payload)
        )
        if action == NOTIFY[0]:
            _signed_notification_record(staff, case, suspect)
        request = outcome.request
        for decision in decisions:
            approval = workflow.pending_approval(request)
            approver = staff["legal"] if approval.role == Role.LEGAL_OFFICER else staff["leader"]
            workflow.decide(
                approver,
                approval,
                Decision(decision),
                "同意" if decision == "approve" else "证据不足，请补充询问笔录。",
            )


def _device_key(user: User) -> Ed25519PrivateKey:
    """The key of the user's demo phone, derived from the user name: seeding is repeatable."""
    seed = hashlib.sha256(f"fieldcase-demo-phone:{user.username}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def _signature_png(strokes: list[list[list[int]]], width: int = 100, height: int = 40) -> bytes:
    """The pen strokes drawn as a greyscale PNG: dark lines on white."""
    rows = [bytearray(b"\xff" * width) for _ in range(height)]
    for stroke in strokes:
        for (x0, y0, _), (x1, y1, _) in pairwise(stroke):
            steps = max(abs(x1 - x0), abs(y1 - y0), 1)
            for i in range(steps + 1):
                rows[y0 + (y1 - y0) * i // steps][x0 + (x1 - x0) * i // steps] = 0

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + bytes(row) for row in rows))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _signed_notification_record(staff: dict[str, User], case: Case, suspect: CasePerson) -> None:
    """The case's notification record about the suspect, filled in, finalised and signed by
    the two officers and the suspect on the officer's phone."""
    officer, second = staff["officer"], staff["officer2"]
    key = _device_key(officer)
    device, _ = devices.enroll(
        officer, f"demo-phone-{officer.username}", "执法手机", signing.public_key_text(key)
    )
    document, _ = documents.create_document(
        officer,
        case,
        {
            "id": None,
            "kind": "notification_record",
            "person_id": suspect.id,
            "title": None,
            "person_is_minor": None,
            "needs_interpreter": False,
        },
    )
    header = {**NOTIFICATION["header"], "notified_at": format_time(utcnow())}
    documents.edit_document(officer, case, document, {**NOTIFICATION, "header": header})
    documents.finalize_document(officer, case, document)
    image = _signature_png(SIGNATURE_STROKES)
    for role, name, user in (
        (SignerRole.OFFICER, officer.display_name, officer),
        (SignerRole.SECOND_OFFICER, second.display_name, second),
        (SignerRole.PARTY, suspect.name, None),
    ):
        signed_at = utcnow()
        fields = signature_fields(
            document_id=str(document.id),
            content_sha256=document.content_sha256,
            signer_role=role,
            signer_name=name,
            signer_user_id=str(user.id) if user else None,
            signer_id_number=None,
            signed_at=signed_at,
            image_png=image,
            fingerprint=None,
            strokes=SIGNATURE_STROKES,
            device_id=device.device_id,
        )
        documents.add_signature(
            officer,
            case,
            document,
            {
                "id": None,
                "signer_role": role,
                "signer_name": name,
                "signer_user_id": user.id if user else None,
                "signer_id_number": None,
                "strokes": SIGNATURE_STROKES,
                "image_png": signing.b64encode(image),
                "fingerprint_png": None,
                "signed_at": signed_at,
                "content_sha256": document.content_sha256,
                "device_id": device.device_id,
                "device_signature": signing.sign(key, SIGNATURE_PURPOSE, fields),
            },
        )
