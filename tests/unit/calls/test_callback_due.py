from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pbx_service.callbacks.rules import callback_due
from pbx_service.calls.hours import BusinessHours
from pbx_service.config.hours import Schedule

MSK = ZoneInfo("Europe/Moscow")
OFFICE = BusinessHours(
    Schedule.model_validate({"timezone": "Europe/Moscow", "weekly": {"mon-fri": ["09:00-18:00"]}})
)
SLA = timedelta(minutes=30)


def test_open_is_now_plus_sla() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=MSK)  # a Wednesday
    assert callback_due(now, OFFICE, SLA) == now + SLA


def test_no_schedule_is_always_open() -> None:
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    assert callback_due(now, None, SLA) == now + SLA


def test_closed_is_next_opening_plus_sla() -> None:
    friday_night = datetime(2026, 11, 27, 20, 0, tzinfo=MSK)
    due = callback_due(friday_night, OFFICE, SLA)
    assert due == datetime(2026, 11, 30, 9, 30, tzinfo=MSK)  # Monday 09:30
