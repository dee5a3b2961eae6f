"""The young people's list and page through the real app, on both databases: who sees whom,
404 outside scope, admins refused, plan and meeting changes that move the schedule with them,
CSRF, and the audit trail that the export carries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dialogs.types import GoalStatus, MeetingStatus, ScheduledStatus, YoungPersonStatus
from storage import plans
from storage.db import Database
from storage.models import (
    AuditEvent,
    Goal,
    Meeting,
    ScheduledItem,
    StaffUser,
    SubGoal,
    YoungPerson,
    utcnow,
)
from tests.staff_world import (
    StaffSite,
    csrf_token,
    post_form,
    staff_site,
)


@dataclass
class Site(StaffSite):
    def person(self, name: str) -> int:
        return self.world.people[name]

    def page(self, name: str) -> str:
        return f"/young-people/{self.person(name)}"

    def events(self, action: str, person: str | None = None) -> list[AuditEvent]:
        query = sa.select(AuditEvent).where(AuditEvent.action == action)
        if person is not None:
            query = query.where(AuditEvent.young_person_id == self.person(person))
        with self.runtime.database.session() as session:
            return list(session.scalars(query.order_by(AuditEvent.id)))

    def pending(self, **where: int) -> list[ScheduledItem]:
        conditions = [getattr(ScheduledItem, k) == v for k, v in where.items()]
        with self.runtime.database.session() as session:
            return list(
                session.scalars(
                    sa.select(ScheduledItem)
                    .where(ScheduledItem.status == ScheduledStatus.PENDING, *conditions)
                    .order_by(ScheduledItem.due_at)
                )
            )

    def zone(self) -> ZoneInfo:
        with self.runtime.database.session() as session:
            person = session.get_one(YoungPerson, self.person("mads"))
            return ZoneInfo(person.municipality.timezone)


@pytest.fixture
def site(database: Database) -> Iterator[Site]:
    with staff_site(database, Site) as built:
        yield built


def _away(site: Site, who: str, backup: str) -> None:
    with site.runtime.database.session() as session:
        staff = session.get_one(StaffUser, site.world.staff[who])
        staff.absent_from = utcnow() - timedelta(days=1)
        staff.absent_until = utcnow() + timedelta(days=3)
        staff.backup_id = site.world.staff[backup]


def _listed(client: TestClient, query: str = "") -> set[str]:
    response = client.get("/young-people" + query)
    assert response.status_code == 200
    return {name for name in ("Mads", "Sara", "Emil", "Freja") if f">{name}</a>" in response.text}


def _local(site: Site, days: int, hour: int, minute: int = 0) -> tuple[str, str, datetime]:
    """A day and time ``days`` from today in the municipality's zone, as the form sends them."""
    zone = site.zone()
    day = utcnow().astimezone(zone).date() + timedelta(days=days)
    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    return day.isoformat(), f"{hour:02d}:{minute:02d}", moment.astimezone(UTC)


# ---------------------------------------------------------------------------- who sees whom


def test_each_role_lists_exactly_its_own(site: Site) -> None:
    assert _listed(site.browser("karin")) == {"Mads"}
    assert _listed(site.browser("ali")) == {"Sara"}
    assert _listed(site.browser("ole")) == {"Freja"}
    assert _listed(site.browser("carsten")) == {"Mads", "Sara", "Emil"}
    assert _listed(site.browser("olga")) == {"Freja"}


def test_a_backup_sees_the_colleagues_young_people_while_they_are_away(site: Site) -> None:
    karin = site.browser("karin")
    assert karin.get(site.page("sara")).status_code == 404
    _away(site, "ali", backup="karin")
    assert _listed(karin) == {"Mads", "Sara"}
    assert karin.get(site.page("sara")).status_code == 200
    assert _listed(site.browser("ole")) == {"Freja"}


def test_search_by_name_and_filter_by_status(site: Site) -> None:
    with site.runtime.database.session() as session:
        session.get_one(YoungPerson, site.person("sara")).status = YoungPersonStatus.ACTIVE
    carsten = site.browser("carsten")
    assert _listed(carsten, "?q=ma") == {"Mads"}
    assert _listed(carsten, "?q=%25") == set()  # a wildcard is a character, not a pattern
    assert _listed(carsten, "?status=active") == {"Sara"}
    assert _listed(carsten, "?status=invited") == {"Mads", "Emil"}
    assert _listed(carsten, "?q=e&status=invited") == {"Emil"}
    assert _listed(carsten, "?status=nonsense") == {"Mads", "Sara", "Emil"}
    # Searching never widens the scope.
    assert _listed(site.browser("karin"), "?q=sara") == set()


def test_outside_scope_is_404_and_unknown_is_404_too(site: Site) -> None:
    karin = site.browser("karin")
    olga = site.browser("olga")
    for client, name in ((karin, "sara"), (karin, "emil"), (karin, "freja"), (olga, "mads")):
        response = client.get(site.page(name))
        assert response.status_code == 404, name
        assert name.capitalize() not in response.text
    assert karin.get("/young-people/999999").status_code == 404
    assert site.events("young_person.viewed") == []


def test_an_admin_is_refused_the_list_the_page_and_the_export(site: Site) -> None:
    ada = site.browser("ada")
    for path in (
        "/young-people",
        site.page("mads"),
        site.page("mads") + "/export.json",
        site.page("mads") + "/export.csv",
    ):
        response = ada.get(path)
        assert response.status_code == 403, path
        assert "Mads" not in response.text
    assert site.events("young_person.viewed") == []


def test_without_signing_in_the_pages_lead_to_sign_in(site: Site) -> None:
    anonymous = site.browser()
    for path in ("/young-people", site.page("mads"), site.page("mads") + "/export.json"):
        response = anonymous.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/sign-in?next=")


def test_the_page_shows_the_young_person_and_links_to_the_conversation(site: Site) -> None:
    with site.runtime.database.session() as session:
        person = session.get_one(YoungPerson, site.person("mads"))
        person.phone = "+4512345678"
        person.telegram_chat_id = 4711
    response = site.browser("karin").get(site.page("mads"))
    assert response.status_code == 200
    text = response.text
    assert "<h1>Mads</h1>" in text
    assert "Karin Kontakt" in text
    assert f'href="/inbox/{site.person("mads")}"' in text
    assert f'data-live="young-person" data-young-person="{site.person("mads")}"' in text
    assert "+4512345678" in text and "Forbundet" in text
    assert response.headers["cache-control"] == "no-store"
    # A kontaktperson is not offered the export.
    assert "export.json" not in text


# ---------------------------------------------------------------------------- the plan


def test_goals_and_sub_goals_through_the_page_change_the_plan_and_its_check_ins(
    site: Site,
) -> None:
    karin = site.browser("karin")
    page = site.page("mads")
    response = post_form(karin, page, f"{page}/goals", title="Starte på FGU", description="")
    assert (response.status_code, response.headers["location"]) == (
        303,
        f"{page}?done=goal#plan",
    )
    with site.runtime.database.session() as session:
        [goal] = session.scalars(sa.select(Goal)).all()
        assert (goal.title, goal.young_person_id) == ("Starte på FGU", site.person("mads"))
        goal_id = goal.id
    due = utcnow().astimezone(site.zone()).date() + timedelta(days=10)
    response = post_form(
        karin,
        page,
        f"{page}/goals/{goal_id}/sub-goals",
        title="Besøge skolen",
        due_date=due.strftime("%d-%m-%Y"),
    )
    assert response.status_code == 303
    with site.runtime.database.session() as session:
        [sub_goal] = session.scalars(sa.select(SubGoal)).all()
        sub_goal_id = sub_goal.id
        assert sub_goal.due_date == due
    kinds = [i.kind for i in site.pending(sub_goal_id=sub_goal_id)]
    assert plans.SUB_GOAL_CHECK_IN in kinds and plans.SUB_GOAL_OVERDUE in kinds
    shown = karin.get(page).text
    assert "Besøge skolen" in shown and "Tjek-ind" in shown

    # A new due date replaces the check-ins; a new title is kept.
    later = due + timedelta(days=7)
    response = post_form(
        karin,
        page,
        f"{page}/sub-goals/{sub_goal_id}",
        title="Besøge skolen med mor",
        due_date=later.isoformat(),
        status="under_way",
    )
    assert response.status_code == 303
    items = site.pending(sub_goal_id=sub_goal_id)
    assert items and all(i.payload["due_date"] == later.isoformat() for i in items)
    with site.runtime.database.session() as session:
        changed = session.get_one(SubGoal, sub_goal_id)
        assert (changed.title, changed.status) == ("Besøge skolen med mor", GoalStatus.UNDER_WAY)

    # Done: nothing more to check in about.
    response = post_form(karin, page, f"{page}/sub-goals/{sub_goal_id}/done")
    assert response.status_code == 303
    assert site.pending(sub_goal_id=sub_goal_id) == []
    with site.runtime.database.session() as session:
        assert session.get_one(SubGoal, sub_goal_id).status is GoalStatus.DONE
    actions = [e.action for e in site.events("young_person.sub_goal_changed", "mads")]
    assert len(actions) == 2
    assert len(site.events("young_person.goal_added", "mads")) == 1
    assert len(site.events("young_person.sub_goal_added", "mads")) == 1


def test_a_goal_is_edited_and_marked_done_through_the_page(site: Site) -> None:
    karin = site.browser("karin")
    page = site.page("mads")
    post_form(karin, page, f"{page}/goals", title="Starte på FGU", description="")
    with site.runtime.database.session() as session:
        goal_id = session.scalars(sa.select(Goal.id)).one()
    response = post_form(
        karin,
        page,
        f"{page}/goals/{goal_id}",
        title="Starte på FGU i august",
        description="Med en praktik først",
        status="done",
    )
    assert (response.status_code, response.headers["location"]) == (
        303,
        f"{page}?done=goal_changed#goal-{goal_id}",
    )
    with site.runtime.database.session() as session:
        goal = session.get_one(Goal, goal_id)
        assert (goal.title, goal.description, goal.status) == (
            "Starte på FGU i august",
            "Med en praktik først",
            GoalStatus.DONE,
        )
    [event] = site.events("young_person.goal_changed", "mads")
    assert (event.details["status"], event.details["status_before"]) == ("done", "planned")
    # A status that does not exist changes nothing and says which field is wrong.
    response = post_form(karin, page, f"{page}/goals/{goal_id}", title="X", status="finished")
    assert response.status_code == 400
    assert "Vælg en status." in response.text
    with site.runtime.database.session() as session:
        assert session.get_one(Goal, goal_id).title == "Starte på FGU i august"


def test_form_errors_are_shown_and_change_nothing(site: Site) -> None:
    karin = site.browser("karin")
    page = site.page("mads")
    token = csrf_token(karin.get(page).text)
    response = karin.post(f"{page}/goals", data={"csrf_token": token, "title": "  "})
    assert response.status_code == 400
    assert 'href="#goal-title"' in response.text
    assert 'aria-describedby="goal-title-hint goal-title-error"' in response.text
    day, _, _ = _local(site, -1, 10)
    response = karin.post(
        f"{page}/meetings",
        data={"csrf_token": token, "day": day, "at": "25:00", "minutes": "60"},
    )
    assert response.status_code == 400
    assert "Skriv et klokkeslæt" in response.text
    day, at, _ = _local(site, -1, 10)
    response = karin.post(
        f"{page}/meetings", data={"csrf_token": token, "day": day, "at": at, "minutes": "60"}
    )
    assert response.status_code == 400
    assert "Tidspunktet er allerede passeret" in response.text
    with site.runtime.database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Goal)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(Meeting)) == 0


def test_a_goal_of_someone_else_cannot_be_reached_through_ones_own_young_person(
    site: Site,
) -> None:
    with site.runtime.database.session() as session:
        sara = session.get_one(YoungPerson, site.person("sara"))
        goal = plans.add_goal(session, sara, title="Saras mål", now=utcnow())
        goal_id = goal.id
    karin = site.browser("karin")
    page = site.page("mads")
    response = post_form(karin, page, f"{page}/goals/{goal_id}/sub-goals", title="Snyd")
    assert response.status_code == 404
    with site.runtime.database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(SubGoal)) == 0


# ---------------------------------------------------------------------------- meetings


def test_meetings_created_moved_and_cancelled_through_the_page_carry_their_reminders(
    site: Site,
) -> None:
    karin = site.browser("karin")
    page = site.page("mads")
    day, at, starts = _local(site, 5, 14, 30)
    response = post_form(
        karin,
        page,
        f"{page}/meetings",
        day=day,
        at=at,
        minutes="45",
        place="Jobcentret",
        purpose="Snak om FGU",
    )
    assert (response.status_code, response.headers["location"]) == (
        303,
        f"{page}?done=meeting#meetings",
    )
    with site.runtime.database.session() as session:
        [meeting] = session.scalars(sa.select(Meeting)).all()
        meeting_id = meeting.id
        assert meeting.starts_at == starts
        assert (meeting.duration_minutes, meeting.place, meeting.staff_id) == (
            45,
            "Jobcentret",
            site.world.staff["karin"],
        )
    reminders = site.pending(meeting_id=meeting_id)
    assert [r.kind for r in reminders] == [plans.MEETING_REMINDER] * 2
    assert {r.due_at for r in reminders} == {
        starts - timedelta(hours=24),
        starts - timedelta(hours=2),
    }
    shown = karin.get(page).text
    assert "Påmindelse" in shown and "Jobcentret" in shown

    # Moving replaces the reminders.
    new_day, new_at, new_start = _local(site, 8, 9, 0)
    response = post_form(karin, page, f"{page}/meetings/{meeting_id}/move", day=new_day, at=new_at)
    assert response.status_code == 303
    moved = site.pending(meeting_id=meeting_id)
    assert {r.due_at for r in moved} == {
        new_start - timedelta(hours=24),
        new_start - timedelta(hours=2),
    }
    with site.runtime.database.session() as session:
        cancelled_count = session.scalar(
            sa.select(sa.func.count())
            .select_from(ScheduledItem)
            .where(
                ScheduledItem.meeting_id == meeting_id,
                ScheduledItem.status == ScheduledStatus.CANCELLED,
            )
        )
        assert cancelled_count == 2
        assert session.get_one(Meeting, meeting_id).starts_at == new_start

    # Cancelling cancels them.
    response = post_form(karin, page, f"{page}/meetings/{meeting_id}/cancel")
    assert response.status_code == 303
    assert site.pending(meeting_id=meeting_id) == []
    with site.runtime.database.session() as session:
        assert session.get_one(Meeting, meeting_id).status is MeetingStatus.CANCELLED
    for action in ("meeting_created", "meeting_moved", "meeting_cancelled"):
        [event] = site.events(f"young_person.{action}", "mads")
        assert event.staff_id == site.world.staff["karin"]
        assert event.details["meeting_id"] == meeting_id
    assert "Aflys mødet" not in karin.get(page).text


def test_a_coordinator_plans_for_anyone_in_the_municipality_but_not_elsewhere(
    site: Site,
) -> None:
    carsten = site.browser("carsten")
    day, at, _ = _local(site, 3, 10)
    response = post_form(
        carsten, site.page("emil"), f"{site.page('emil')}/meetings", day=day, at=at, minutes="60"
    )
    assert response.status_code == 303
    # Freja is in Odense: Carsten's token is good, the young person is not his to see.
    token = csrf_token(carsten.get("/young-people").text)
    response = carsten.post(
        f"{site.page('freja')}/meetings",
        data={"csrf_token": token, "day": day, "at": at, "minutes": "60"},
    )
    assert response.status_code == 404
    with site.runtime.database.session() as session:
        owners = session.scalars(sa.select(Meeting.young_person_id)).all()
    assert owners == [site.person("emil")]


def test_every_change_without_the_csrf_token_is_403_and_changes_nothing(site: Site) -> None:
    with site.runtime.database.session() as session:
        mads = session.get_one(YoungPerson, site.person("mads"))
        goal = plans.add_goal(session, mads, title="Mål", now=utcnow())
        sub_goal = plans.add_sub_goal(
            session,
            goal,
            title="Delmål",
            now=utcnow(),
            due_date=utcnow().date() + timedelta(days=9),
        )
        meeting = plans.create_meeting(
            session, mads, starts_at=utcnow() + timedelta(days=4), now=utcnow()
        )
        ids = (goal.id, sub_goal.id, meeting.id)

    def snapshot() -> tuple[object, ...]:
        with site.runtime.database.session() as session:
            return (
                tuple(session.execute(sa.select(Goal.id, Goal.title)).all()),
                tuple(
                    session.execute(
                        sa.select(SubGoal.id, SubGoal.title, SubGoal.status, SubGoal.due_date)
                    ).all()
                ),
                tuple(
                    session.execute(sa.select(Meeting.id, Meeting.starts_at, Meeting.status)).all()
                ),
                tuple(session.execute(sa.select(ScheduledItem.id, ScheduledItem.status)).all()),
            )

    page = site.page("mads")
    day, at, _ = _local(site, 6, 11)
    actions = [
        (f"{page}/goals", {"title": "Nyt"}),
        (f"{page}/goals/{ids[0]}/sub-goals", {"title": "Nyt"}),
        (f"{page}/sub-goals/{ids[1]}", {"title": "X", "status": "done"}),
        (f"{page}/sub-goals/{ids[1]}/done", {}),
        (f"{page}/meetings", {"day": day, "at": at}),
        (f"{page}/meetings/{ids[2]}/move", {"day": day, "at": at}),
        (f"{page}/meetings/{ids[2]}/cancel", {}),
    ]
    karin = site.browser("karin")
    before = snapshot()
    for action, data in actions:
        for token in (None, "x" * 43):
            form = dict(data) if token is None else {"csrf_token": token, **data}
            response = karin.post(action, data=form)
            assert response.status_code == 403, action
            assert "Formularen kunne ikke sendes" in response.text
    assert snapshot() == before
    with site.runtime.database.session() as session:
        changes = session.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.action.like("young_person.%"))
        ).all()
    assert changes == []


def test_admins_and_other_municipalities_cannot_change_anything(site: Site) -> None:
    with site.runtime.database.session() as session:
        mads = session.get_one(YoungPerson, site.person("mads"))
        goal_id = plans.add_goal(session, mads, title="Mål", now=utcnow()).id
    page = site.page("mads")
    for who, status in (("ada", 403), ("olga", 404), ("ali", 404)):
        client = site.browser(who)
        token = csrf_token(client.get("/staff").text)
        for action in (f"{page}/goals", f"{page}/goals/{goal_id}/sub-goals"):
            response = client.post(action, data={"csrf_token": token, "title": "Nyt"})
            assert response.status_code == status, (who, action)
    with site.runtime.database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Goal)) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(SubGoal)) == 0


# ---------------------------------------------------------------------------- audit and export


def test_reading_a_young_persons_page_writes_an_audit_event_and_the_export_contains_it(
    site: Site,
) -> None:
    karin = site.browser("karin")
    assert karin.get(site.page("mads")).status_code == 200
    [viewed] = site.events("young_person.viewed", "mads")
    assert viewed.staff_id == site.world.staff["karin"]
    assert viewed.municipality_id == site.world.places["aarhus"]

    carsten = site.browser("carsten")
    response = carsten.get(site.page("mads") + "/export.json")
    assert response.status_code == 200
    data = json.loads(response.content)
    [logged] = [e for e in data["access_log"] if e["id"] == viewed.id]
    assert (logged["action"], logged["staff"]) == ("young_person.viewed", "Karin Kontakt")
    assert logged["at"] == viewed.at.isoformat()
    # The page's own access log shows it too.
    assert "Karin Kontakt" in carsten.get(site.page("mads")).text


def test_a_kontaktperson_cannot_export_and_a_coordinator_only_their_own(site: Site) -> None:
    for path in ("/export.json", "/export.csv"):
        assert site.browser("karin").get(site.page("mads") + path).status_code == 403
        assert site.browser("olga").get(site.page("mads") + path).status_code == 404
        assert site.browser("carsten").get("/young-people/999999" + path).status_code == 404
    assert site.events("young_person.exported") == []


def test_the_page_is_english_on_request(site: Site) -> None:
    karin = site.browser("karin")
    response = karin.get(site.page("mads") + "?lang=en")
    assert "Dreams and wishes" in response.text
    assert "Young people" in karin.get("/young-people?lang=en").text
