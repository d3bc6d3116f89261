"""New report (incident): saved in the local store at once, sent by the sync worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kivy.properties import BooleanProperty, StringProperty

from mobile.i18n import _
from mobile.screens.base import BaseScreen

CATEGORIES = ("治安", "刑事", "交通", "纠纷", "求助", "其他")
CASE_TYPES = ("administrative", "criminal")
PERSON_ROLES = ("victim", "suspect", "witness")
TIME_FORMAT = "%Y-%m-%d %H:%M"


def case_type_label(case_type: str) -> str:
    return {"administrative": _("Administrative case"), "criminal": _("Criminal case")}[case_type]


class ReportScreen(BaseScreen):
    message = StringProperty("")
    register_case = BooleanProperty(True)
    case_type = StringProperty("administrative")
    gps_text = StringProperty("")

    def open(self, **_arguments: Any) -> None:
        self.clear()

    def clear(self) -> None:
        for name in ("place", "reporter", "phone", "summary", "title", "persons"):
            self.ids[name].text = ""
            self.ids[name].error = ""
        self.ids.category.text = CATEGORIES[0]
        self.ids.occurred_at.text = datetime.now().strftime(TIME_FORMAT)
        self.ids.occurred_at.error = ""
        self.message = ""
        self.gps_text = ""
        self._location: tuple[float, float] | None = None

    def locate(self) -> None:
        """GPS where the platform has it (plyer); otherwise the place is typed in."""
        location = self.app.locate()
        if location is None:
            self.gps_text = _("GPS is not available on this device: enter the place by hand.")
            return
        self._location = location
        self.gps_text = _("Position: {lat:.5f}, {lon:.5f}").format(lat=location[0], lon=location[1])

    def _errors(self) -> dict[str, str]:
        errors = {}
        required = {"place": self.ids.place, "summary": self.ids.summary}
        if self.register_case:
            required["title"] = self.ids.title
        for name, field in required.items():
            if not field.text.strip():
                errors[name] = _("Required")
        try:
            datetime.strptime(self.ids.occurred_at.text.strip(), TIME_FORMAT)
        except ValueError:
            errors["occurred_at"] = _("Use the form 2026-03-01 09:30")
        return errors

    def _persons(self) -> list[dict[str, str]]:
        persons = []
        for line in self.ids.persons.text.splitlines():
            name = line.strip()
            if name:
                persons.append({"role": "witness", "name": name})
        return persons

    def save(self) -> None:
        errors = self._errors()
        for name in ("place", "summary", "title", "occurred_at"):
            self.ids[name].error = errors.get(name, "")
        if errors:
            self.message = _("Please complete the marked fields.")
            return
        occurred = datetime.strptime(self.ids.occurred_at.text.strip(), TIME_FORMAT)
        data: dict[str, Any] = {
            "occurred_at": occurred.astimezone().isoformat(),
            "place": self.ids.place.text.strip(),
            "category": self.ids.category.text,
            "summary": self.ids.summary.text.strip(),
            "source": "patrol",
            "persons": self._persons(),
        }
        if self._location is not None:
            data["latitude"], data["longitude"] = self._location
        if self.ids.reporter.text.strip():
            data["reporter"] = {"name": self.ids.reporter.text.strip()}
            if self.ids.phone.text.strip():
                data["reporter"]["phone"] = self.ids.phone.text.strip()
        if self.register_case:
            data["accept"] = {"case_type": self.case_type, "title": self.ids.title.text.strip()}
        self.state.file_report(data)
        self.app.notify(_("Saved on this device. It is sent as soon as the server is reachable."))
        self.app.show("home")
