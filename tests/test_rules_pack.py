"""Every rule of the pack fires on its own case data and stays quiet on compliant data.

Each scenario names the facts (local Asia/Shanghai times), the moment the rule
must fire (hand-computed with CPL art. 105 counting), and what makes it quiet:
a fact that meets the deadline (``clear``) or compliant data (``instead``).
Time is injected; nothing sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from backend.extensions import db
from backend.supervision import service
from shared.rules import RulePackError, default_pack, load_pack

from support_supervision import F, fired, local, new_case, record

P1 = "p1"
ITEM = "item1"


@dataclass(frozen=True)
class S:
    case_type: str
    facts: list[F]
    fires: str
    clear: list[F] = field(default_factory=list)
    instead: list[F] | None = None


def person(kind: str, at: str, **data: Any) -> F:
    return F(kind, at, data, P1)


def item(kind: str, at: str, **data: Any) -> F:
    return F(kind, at, data, ITEM)


CRIM, ADMIN = "criminal", "administrative"
MAR2 = "2026-03-02 10:20"

SCENARIOS: dict[str, S] = {
    "transfer_out_of_jurisdiction": S(
        CRIM,
        [F("out_of_jurisdiction", MAR2)],
        "2026-03-03 11:00",
        clear=[F("transferred_out", "2026-03-02 15:00")],
    ),
    # Last day Oct 1 (National Day week) moves to Oct 8; warned 24 h before.
    "filing_review_deadline": S(
        CRIM,
        [F("accepted", "2026-09-28 10:00")],
        "2026-10-08 00:00",
        clear=[F("filed", "2026-09-29 09:00")],
    ),
    "filing_review_extended": S(
        CRIM,
        [F("filing_review_extended", "2026-03-02 10:00")],
        "2026-03-09 00:00",
        clear=[F("not_filed", "2026-03-05 09:00")],
    ),
    "non_filing_notice": S(
        CRIM,
        [F("not_filed", "2026-03-02 10:00")],
        "2026-03-06 00:00",
        clear=[F("non_filing_notice_served", "2026-03-04 09:00")],
    ),
    "non_filing_reconsideration": S(
        CRIM,
        [F("reconsideration_applied", "2026-03-02 10:00")],
        "2026-03-30 00:00",
        clear=[F("reconsideration_decided", "2026-03-20 09:00")],
    ),
    "criminal_summons_duration": S(
        CRIM,
        [person("summoned", MAR2)],
        "2026-03-02 21:00",
        clear=[person("summons_ended", "2026-03-02 18:00")],
    ),
    "criminal_summons_duration_serious": S(
        CRIM,
        [person("summoned", MAR2, especially_serious=True)],
        "2026-03-03 09:00",
        clear=[person("summons_ended", "2026-03-02 20:00")],
    ),
    "detention_to_jail": S(
        CRIM,
        [person("detained", MAR2)],
        "2026-03-03 11:00",
        clear=[person("delivered_to_jail", "2026-03-02 20:00")],
    ),
    "detention_family_notice": S(
        CRIM,
        [person("detained", MAR2)],
        "2026-03-03 11:00",
        clear=[person("family_notified", "2026-03-02 20:00")],
        instead=[person("detained", MAR2, notice_exception=True)],
    ),
    "detention_interrogation": S(
        CRIM,
        [person("detained", MAR2)],
        "2026-03-03 11:00",
        clear=[person("interrogated", "2026-03-02 20:00")],
    ),
    # Custody never extends: last day Oct 1 is a holiday, still the end.
    "arrest_request_deadline": S(
        CRIM,
        [person("detained", "2026-09-28 10:00")],
        "2026-10-01 00:00",
        clear=[person("arrest_requested", "2026-09-30 10:00")],
    ),
    "arrest_request_deadline_roving": S(
        CRIM,
        [person("detained", "2026-03-02 10:00", roving_or_gang=True)],
        "2026-03-30 00:00",
        clear=[person("arrest_requested", "2026-03-20 10:00")],
    ),
    "procuratorate_arrest_decision": S(
        CRIM,
        [person("arrest_requested", "2026-03-02 10:00")],
        "2026-03-10 00:00",
        clear=[person("arrest_approved", "2026-03-06 10:00")],
    ),
    "arrest_family_notice": S(
        CRIM,
        [person("arrested", MAR2)],
        "2026-03-03 11:00",
        clear=[person("family_notified", "2026-03-02 18:00")],
    ),
    "arrest_interrogation": S(
        CRIM,
        [person("arrested", MAR2)],
        "2026-03-03 11:00",
        clear=[person("interrogated", "2026-03-02 18:00")],
    ),
    # Dec 31 + 2 months = Feb 28 (clamped); warned 7 days ahead.
    "investigation_custody_limit": S(
        CRIM,
        [person("arrested", "2025-12-31 10:00")],
        "2026-02-22 00:00",
        clear=[F("transferred_for_prosecution", "2026-02-10 10:00")],
    ),
    "bail_max": S(
        CRIM,
        [person("bail", "2025-03-02 10:00")],
        "2026-02-16 00:00",
        clear=[person("bail_ended", "2026-01-10 10:00")],
    ),
    "bail_expired": S(
        CRIM,
        [person("bail", "2025-03-02 10:00")],
        "2026-03-03 00:00",
        clear=[person("measure_changed", "2026-01-10 10:00")],
    ),
    "rsl_max": S(
        CRIM,
        [person("rsl", "2025-09-02 10:00")],
        "2026-02-21 00:00",
        clear=[person("rsl_ended", "2026-01-10 10:00")],
    ),
    "rsl_expired": S(
        CRIM,
        [person("rsl", "2025-09-02 10:00")],
        "2026-03-03 00:00",
        clear=[person("rsl_ended", "2026-01-10 10:00")],
    ),
    "rsl_designated_family_notice": S(
        CRIM,
        [person("rsl", MAR2, designated_residence=True)],
        "2026-03-03 11:00",
        clear=[person("family_notified", "2026-03-02 18:00")],
        instead=[person("rsl", MAR2, designated_residence=False)],
    ),
    "measure_change_request": S(
        CRIM,
        [person("measure_change_requested", "2026-03-02 10:00")],
        "2026-03-06 00:00",
        clear=[person("measure_change_decided", "2026-03-04 10:00")],
    ),
    "legal_aid_notice": S(
        CRIM,
        [person("legal_aid_needed", "2026-03-02 10:00")],
        "2026-03-06 00:00",
        clear=[person("legal_aid_notified", "2026-03-03 10:00")],
    ),
    "legal_aid_request_forward": S(
        CRIM,
        [person("legal_aid_requested", MAR2)],
        "2026-03-03 11:00",
        clear=[person("legal_aid_request_forwarded", "2026-03-02 18:00")],
    ),
    "unrelated_property_release": S(
        CRIM,
        [item("property_found_unrelated", "2026-03-02 10:00")],
        "2026-03-06 00:00",
        clear=[item("property_returned", "2026-03-04 10:00")],
    ),
    "revocation_notice": S(
        CRIM,
        [F("revoked", "2026-03-02 10:00")],
        "2026-03-06 00:00",
        clear=[F("revocation_notice_served", "2026-03-03 10:00")],
    ),
    "admin_acceptance_review": S(
        ADMIN,
        [F("accepted", MAR2)],
        "2026-03-03 07:00",
        clear=[F("investigation_started", "2026-03-02 16:00")],
    ),
    # ZA2012 facts are dated before 2026-01-01; in 2026 only the ZA2025 rules apply.
    "admin_questioning_time_za2012": S(
        ADMIN,
        [person("questioning_started", "2025-12-01 10:20")],
        "2025-12-01 18:00",
        clear=[person("questioning_ended", "2025-12-01 16:00")],
        instead=[person("questioning_started", MAR2)],
    ),
    "admin_questioning_time_za2012_detention": S(
        ADMIN,
        [person("questioning_started", "2025-12-01 10:20", detention_possible=True)],
        "2025-12-02 09:00",
        clear=[person("questioning_ended", "2025-12-01 20:00")],
        instead=[person("questioning_started", MAR2, detention_possible=True)],
    ),
    "admin_questioning_time_za2025": S(
        ADMIN,
        [person("questioning_started", MAR2)],
        "2026-03-02 18:00",
        clear=[person("questioning_ended", "2026-03-02 16:00")],
        instead=[person("questioning_started", "2025-12-01 10:20")],
    ),
    "admin_questioning_time_za2025_many": S(
        ADMIN,
        [person("questioning_started", MAR2, many_or_identity_unknown=True)],
        "2026-03-02 22:00",
        clear=[person("questioning_ended", "2026-03-02 20:00")],
        instead=[person("questioning_started", "2025-12-01 10:20", many_or_identity_unknown=True)],
    ),
    "admin_questioning_time_za2025_detention": S(
        ADMIN,
        [person("questioning_started", MAR2, detention_possible=True)],
        "2026-03-03 09:00",
        clear=[person("questioning_ended", "2026-03-02 20:00")],
    ),
    "continued_questioning": S(
        ADMIN,
        [person("continued_questioning", MAR2)],
        "2026-03-02 21:00",
        clear=[person("continued_questioning_ended", "2026-03-02 18:00")],
    ),
    "admin_case_deadline_za2012": S(
        ADMIN,
        [F("accepted", "2025-12-01 10:00")],
        "2025-12-27 00:00",
        clear=[F("decided", "2025-12-20 10:00")],
    ),
    "admin_case_deadline_za2025": S(
        ADMIN,
        [F("accepted", "2026-03-02 10:00")],
        "2026-03-28 00:00",
        clear=[F("decided", "2026-03-20 10:00")],
    ),
    "fast_track_decision": S(
        ADMIN,
        [F("fast_track", MAR2)],
        "2026-03-04 05:00",
        clear=[F("decided", "2026-03-03 10:00")],
    ),
    "onspot_penalty_filing": S(
        ADMIN,
        [F("onspot_penalty", MAR2)],
        "2026-03-03 11:00",
        clear=[F("onspot_penalty_filed", "2026-03-02 17:00")],
    ),
    "decision_service_za2012": S(
        ADMIN,
        [F("decided", "2025-12-01 10:00")],
        "2025-12-04 00:00",
        clear=[F("served", "2025-12-02 10:00")],
    ),
    # Last day Oct 1 2026 is a holiday: the period ends with Oct 8, the next working day.
    "decision_service_za2025": S(
        ADMIN,
        [F("decided", "2026-09-29 10:00")],
        "2026-10-09 00:00",
        clear=[F("served", "2026-09-30 10:00")],
    ),
    "hearing_acceptance": S(
        ADMIN,
        [F("hearing_requested", "2026-03-02 10:00")],
        "2026-03-05 00:00",
        clear=[F("hearing_accepted", "2026-03-03 10:00")],
    ),
    "hearing_hold": S(
        ADMIN,
        [F("hearing_accepted", "2026-03-02 10:00")],
        "2026-03-11 00:00",
        clear=[F("hearing", "2026-03-10 09:00", ended="2026-03-10 12:00")],
    ),
    # Last day Saturday Mar 7: ends with Monday Mar 9.
    "appraisal_service": S(
        ADMIN,
        [F("appraisal_opinion", "2026-03-02 10:00")],
        "2026-03-10 00:00",
        clear=[F("appraisal_served", "2026-03-05 10:00")],
    ),
    "evidence_preservation": S(
        ADMIN,
        [item("preservation_registered", "2026-03-02 10:00")],
        "2026-03-10 00:00",
        clear=[item("preservation_decided", "2026-03-06 10:00")],
    ),
    "admin_seizure_period": S(
        ADMIN,
        [item("admin_seizure", "2026-03-02 10:00")],
        "2026-03-30 00:00",
        clear=[item("seizure_ended", "2026-03-20 10:00")],
    ),
    "property_handover": S(
        ADMIN,
        [item("property_seized", MAR2)],
        "2026-03-03 11:00",
        clear=[item("property_handed_over", "2026-03-02 15:00")],
    ),
    "report_registration": S(
        ADMIN,
        [F("accepted", MAR2)],
        "2026-03-02 11:20",
        clear=[F("receipt_issued", "2026-03-02 10:30")],
    ),
    "legal_review_required": S(
        ADMIN,
        [F("decided", "2026-03-02 10:00")],
        "2026-03-02 10:00",
        clear=[F("legal_reviewed", "2026-03-01 16:00")],
    ),
    "counsel_rights_notice": S(
        CRIM,
        [person("interrogated", "2026-03-02 10:00")],
        "2026-03-02 10:00",
        clear=[person("counsel_rights_notified", "2026-03-02 10:00")],
    ),
    "interrogation_two_investigators": S(
        CRIM,
        [person("interrogated", "2026-03-02 10:00", officers=1)],
        "2026-03-02 10:00",
        instead=[person("interrogated", "2026-03-02 10:00", officers=2)],
    ),
    "interrogation_av_recording": S(
        CRIM,
        [person("interrogated", "2026-03-02 10:00", major_case=True)],
        "2026-03-02 10:00",
        instead=[person("interrogated", "2026-03-02 10:00", major_case=True, av_recorded=True)],
    ),
    "juvenile_guardian_present": S(
        ADMIN,
        [person("interrogated", "2026-03-02 10:00", minor=True)],
        "2026-03-02 10:00",
        instead=[person("interrogated", "2026-03-02 10:00", minor=True, guardian_present=True)],
    ),
    "transcript_signatures": S(
        ADMIN,
        [person("interrogated", "2026-03-02 10:00", officer_signatures=1)],
        "2026-03-02 10:00",
        instead=[person("interrogated", "2026-03-02 10:00", officer_signatures=2)],
    ),
    "seizure_two_officers": S(
        CRIM,
        [item("property_seized", "2026-03-02 10:00", officers=1)],
        "2026-03-02 10:00",
        instead=[item("property_seized", "2026-03-02 10:00", officers=2)],
    ),
    "seizure_list": S(
        CRIM,
        [item("property_seized", "2026-03-02 10:00", list_signed=False)],
        "2026-03-02 10:00",
        instead=[item("property_seized", "2026-03-02 10:00", list_signed=True)],
    ),
    "witness_eligibility": S(
        CRIM,
        [item("property_seized", "2026-03-02 10:00", witness_is_police=True)],
        "2026-03-02 10:00",
        instead=[
            item("property_seized", "2026-03-02 10:00", witness_is_police=True, av_recorded=True)
        ],
    ),
    "area_exit_missing": S(
        ADMIN,
        [person("area_entry", "2026-03-02 10:00")],
        "2026-03-03 10:00",
        clear=[person("area_exit", "2026-03-02 18:00")],
    ),
    "evidence_not_uploaded": S(
        ADMIN,
        [item("evidence_listed", "2026-03-02 10:00")],
        "2026-03-03 10:00",
        clear=[item("evidence_uploaded", "2026-03-02 12:00")],
    ),
    "filler_photos_reused": S(
        CRIM,
        [F("identification", "2026-03-02 10:00", {"fillers_reused": True})],
        "2026-03-02 10:00",
        instead=[F("identification", "2026-03-02 10:00", {"fillers_reused": False})],
    ),
}
IDLE_RULES = {"case_idle"}


@pytest.fixture
def session(app):
    with app.app_context():
        yield db.session
        db.session.rollback()


def test_every_rule_has_a_scenario():
    assert set(SCENARIOS) | IDLE_RULES == set(default_pack().rules)
    assert len(default_pack().rules) >= 40


@pytest.mark.parametrize("rule_id", sorted(SCENARIOS))
def test_rule_fires(session, world, rule_id):
    scenario = SCENARIOS[rule_id]
    officer = world.user("a1.officer").id
    case = new_case(officer, scenario.case_type)
    record(case, officer, *scenario.facts)
    assert fired(case.id, rule_id, local(scenario.fires))


@pytest.mark.parametrize("rule_id", sorted(SCENARIOS))
def test_rule_stays_quiet(session, world, rule_id):
    scenario = SCENARIOS[rule_id]
    officer = world.user("a1.officer").id
    early = new_case(officer, scenario.case_type)
    record(early, officer, *scenario.facts)
    assert not fired(early.id, rule_id, local(scenario.fires) - timedelta(minutes=1))
    compliant = new_case(officer, scenario.case_type)
    facts = scenario.instead if scenario.instead is not None else scenario.facts + scenario.clear
    record(compliant, officer, *facts)
    assert not fired(compliant.id, rule_id, local(scenario.fires) + timedelta(days=1))


def test_case_idle_fires_after_thirty_days_without_activity(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer)
    session.flush()
    assert not fired(case.id, "case_idle", case.updated_at + timedelta(days=29))
    assert fired(case.id, "case_idle", case.updated_at + timedelta(days=30, minutes=1))


def test_case_idle_quiet_for_a_case_with_recent_activity(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer)
    session.flush()
    later = case.updated_at + timedelta(days=20)
    record(case, officer, F("receipt_issued", "2026-03-02 10:00"))
    case.updated_at = later
    session.flush()
    assert not fired(case.id, "case_idle", later + timedelta(days=29))


def test_closed_cases_only_watch_after_close_rules(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer, CRIM)
    record(case, officer, F("not_filed", "2026-03-02 10:00"), person("detained", MAR2))
    case.is_open = False
    session.flush()
    now = local("2026-03-07 00:00")
    assert fired(case.id, "non_filing_notice", now)
    assert not fired(case.id, "detention_to_jail", now)


def test_appraisal_and_hearing_time_is_not_counted(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer)
    record(case, officer, F("accepted", "2026-03-02 10:00"))
    record(case, officer, F("appraisal", "2026-03-05 10:00", ended="2026-03-15 10:00"))
    # 30 days from Mar 2 + 10 days of appraisal: last day Apr 11 (Saturday) -> Monday Apr 13.
    assert not fired(case.id, "admin_case_deadline_za2025", local("2026-04-08 00:00"))
    assert fired(case.id, "admin_case_deadline_za2025", local("2026-04-09 00:00"))
    deadline = next(
        d
        for d in service.list_deadlines(case)
        if d.rule_id == "admin_case_deadline_za2025" and d.starts_at == local("2026-03-02 10:00")
    )
    assert deadline.due_at == local("2026-04-14 00:00")


def test_a_running_appraisal_suspends_the_case_deadline(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer)
    record(case, officer, F("accepted", "2026-03-02 10:00"), F("appraisal", "2026-03-05 10:00"))
    assert not fired(case.id, "admin_case_deadline_za2025", local("2026-06-01 00:00"))


def test_extensions_lengthen_custody(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer, CRIM)
    record(
        case,
        officer,
        person("arrested", "2025-12-31 10:00"),
        person("custody_extended", "2026-02-15 10:00", amount=1),
    )
    # Dec 31 + 3 months = Mar 31; warned 7 days before Apr 1 00:00.
    assert not fired(case.id, "investigation_custody_limit", local("2026-03-24 23:59"))
    assert fired(case.id, "investigation_custody_limit", local("2026-03-25 00:00"))


def test_meeting_fact_must_name_the_same_person(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer, CRIM)
    record(
        case,
        officer,
        person("detained", MAR2),
        F("delivered_to_jail", "2026-03-02 20:00", subject="p2"),
    )
    assert fired(case.id, "detention_to_jail", local("2026-03-03 11:00"))


def test_workflow_steps_become_facts(session, world):
    officer = world.user("a1.officer").id
    case = new_case(officer, CRIM)
    kinds = {fact.kind for fact in service.list_facts(case)}
    assert kinds == {"accepted"}


def test_pack_validation_rejects_bad_rules(tmp_path: Path):
    (tmp_path / "pack.toml").write_text(
        '[pack]\nid = "x"\nversion = "1"\n[laws.L]\ntitle = "t"\nversion = "1"\n'
        "effective_from = 2020-01-01\n"
    )
    (tmp_path / "rules.toml").write_text(
        '[[rules]]\nid = "r"\nname = { zh = "甲", en = "A" }\nkind = "nonsense"\n'
        'case_types = ["criminal"]\nlaw = "L"\narticle = "1"\n'
        'template = { zh = "甲", en = "A" }\n'
        '[rules.deadline]\nfrom = "a"\namount = 1\nunit = "days"\nuntil = ["b"]\n'
    )
    with pytest.raises(RulePackError, match="nonsense"):
        load_pack(tmp_path)


def test_unverified_facts_carry_their_flag():
    rules = default_pack().rules
    assert rules["admin_questioning_time_za2025"].unverified
    assert rules["filing_review_deadline"].unverified
    assert not rules["detention_to_jail"].unverified
    assert rules["admin_questioning_time_za2012"].law.effective_to is not None
