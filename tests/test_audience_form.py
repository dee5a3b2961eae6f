"""Reading the audience filters from a form (bot/web/audience.py)."""

from __future__ import annotations

from starlette.datastructures import QueryParams

from bot.web.audience import read_audience
from dialogs.types import Channel, YoungPersonStatus


def test_every_filter_is_read_into_the_campaign_engines_audience() -> None:
    params = QueryParams(
        "min_age=15&max_age=17&status=active&status=paused&tag=FGU,Aarhus%20C&tag=&"
        "kontaktperson=7&channel=sms&min_days=3&max_days=30"
    )
    form = read_audience(params, kontaktperson_ids=[7, 8], reachable_only=True)
    assert form.errors == {}
    assert form.chosen
    audience = form.audience
    assert audience is not None
    assert (audience.min_age, audience.max_age) == (15, 17)
    assert audience.statuses == (YoungPersonStatus.ACTIVE, YoungPersonStatus.PAUSED)
    assert audience.tags == ("Aarhus C", "FGU")
    assert audience.kontaktperson_ids == (7,)
    assert audience.channel is Channel.SMS
    assert (audience.min_days_since_contact, audience.max_days_since_contact) == (3, 30)


def test_no_filters_means_everyone_active_for_a_campaign_and_every_status_for_a_list() -> None:
    campaign = read_audience(QueryParams(""), kontaktperson_ids=[], reachable_only=True)
    listing = read_audience(QueryParams(""), kontaktperson_ids=[], reachable_only=False)
    assert not campaign.chosen
    assert campaign.audience is not None and listing.audience is not None
    assert campaign.audience.statuses == (YoungPersonStatus.ACTIVE,)
    assert listing.audience.statuses == ()


def test_each_bad_field_is_named_and_no_audience_is_given() -> None:
    params = QueryParams(
        "min_age=17&max_age=15&status=opted_out&kontaktperson=99&channel=fax&min_days=x"
    )
    form = read_audience(params, kontaktperson_ids=[7], reachable_only=True)
    assert form.audience is None
    assert set(form.errors) == {"max_age", "status", "kontaktperson", "channel", "min_days"}
    assert form.values["min_days"] == "x"  # shown again as typed
    # A list may show young people who have opted out.
    listing = read_audience(
        QueryParams("status=opted_out"), kontaktperson_ids=[], reachable_only=False
    )
    assert listing.errors == {}
    assert listing.audience is not None
    assert listing.audience.statuses == (YoungPersonStatus.OPTED_OUT,)
