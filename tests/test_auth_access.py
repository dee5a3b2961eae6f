"""Who sees which young people (storage.access), on both databases: every role, two
municipalities, and a backup who covers only while the colleague is away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage import access
from storage.db import Database
from storage.handoffs import assignee_for
from storage.models import StaffUser, YoungPerson
from tests.staff_world import STAFF, World, build_world

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _seen(session: Session, world: World, who: str, now: datetime = NOW) -> set[str]:
    staff = session.get_one(StaffUser, world.staff[who])
    ids = set(
        session.scalars(
            sa.select(YoungPerson.id).where(access.visible_young_people(staff, now))
        ).all()
    )
    return {name for name, person_id in world.people.items() if person_id in ids}


def _away(session: Session, world: World, who: str, backup: str | None, days: int | None) -> None:
    staff = session.get_one(StaffUser, world.staff[who])
    staff.absent_from = NOW - timedelta(days=1)
    staff.absent_until = NOW + timedelta(days=days) if days is not None else None
    staff.backup_id = world.staff[backup] if backup else None
    session.flush()
    session.expire_all()


def test_each_role_sees_exactly_its_own(database: Database) -> None:
    with database.session() as session:
        world = build_world(session)
        assert _seen(session, world, "karin") == {"mads"}
        assert _seen(session, world, "ali") == {"sara"}
        assert _seen(session, world, "ole") == {"freja"}
        assert _seen(session, world, "carsten") == {"mads", "sara", "emil"}
        assert _seen(session, world, "olga") == {"freja"}
        # Least privilege: running the installation is no reason to read anyone's data.
        assert _seen(session, world, "ada") == set()


def test_a_backup_sees_the_colleagues_young_people_only_while_they_are_away(
    database: Database,
) -> None:
    with database.session() as session:
        world = build_world(session)
        _away(
            session, world, "ali", backup="karin", days=2
        )  # yesterday until the day after tomorrow
        assert _seen(session, world, "karin") == {"mads", "sara"}
        # Ali is still Sara's kontaktperson while away; Ole in Odense gains nothing.
        assert _seen(session, world, "ali") == {"sara"}
        assert _seen(session, world, "ole") == {"freja"}
        # Before the absence and from its (excluded) end, Karin sees only her own again.
        assert _seen(session, world, "karin", NOW - timedelta(days=2)) == {"mads"}
        assert _seen(session, world, "karin", NOW + timedelta(days=2)) == {"mads"}
        assert _seen(session, world, "karin", NOW + timedelta(days=2, seconds=-1)) == {
            "mads",
            "sara",
        }
        # Carsten's view does not change with absences.
        assert _seen(session, world, "carsten") == {"mads", "sara", "emil"}


def test_an_open_ended_absence_lasts_until_it_is_ended(database: Database) -> None:
    with database.session() as session:
        world = build_world(session)
        _away(session, world, "ali", backup="karin", days=None)
        assert _seen(session, world, "karin", NOW + timedelta(days=400)) == {"mads", "sara"}


def test_a_named_backup_who_is_not_the_colleagues_sees_nothing_of_theirs(
    database: Database,
) -> None:
    with database.session() as session:
        world = build_world(session)
        _away(session, world, "ali", backup=None, days=2)
        assert _seen(session, world, "karin") == {"mads"}
        # A backup from another municipality (the forms refuse it; the rule does not rely on that).
        _away(session, world, "ali", backup="ole", days=2)
        assert _seen(session, world, "ole") == {"freja"}


def test_inactive_staff_see_nothing_also_as_backup(database: Database) -> None:
    with database.session() as session:
        world = build_world(session)
        _away(session, world, "ali", backup="karin", days=2)
        for who in ("karin", "carsten"):
            session.get_one(StaffUser, world.staff[who]).is_active = False
        session.flush()
        assert _seen(session, world, "karin") == set()
        assert _seen(session, world, "carsten") == set()


def test_can_see_agrees_with_the_clause_for_everyone(database: Database) -> None:
    with database.session() as session:
        world = build_world(session)
        _away(session, world, "ali", backup="karin", days=2)
        for who in STAFF:
            staff = session.get_one(StaffUser, world.staff[who])
            seen = _seen(session, world, who)
            for name, person_id in world.people.items():
                assert access.can_see(session, staff, person_id, NOW) == (name in seen), (
                    who,
                    name,
                )
            assert not access.can_see(session, staff, 999_999, NOW)


@pytest.mark.parametrize("away", [False, True])
def test_whoever_gets_a_handoff_may_see_the_young_person(database: Database, away: bool) -> None:
    with database.session() as session:
        world = build_world(session)
        if away:
            _away(session, world, "ali", backup="karin", days=2)
        sara = session.get_one(YoungPerson, world.people["sara"])
        assignee = assignee_for(sara, NOW)
        assert assignee == world.staff["karin" if away else "ali"]
        staff = session.get_one(StaffUser, assignee)
        assert access.can_see(session, staff, sara.id, NOW)


def test_covering_for_names_the_colleagues_away_now(database: Database) -> None:
    with database.session() as session:
        world = build_world(session)
        karin = session.get_one(StaffUser, world.staff["karin"])
        assert access.covering_for(session, karin, NOW) == []
        _away(session, world, "ali", backup="karin", days=2)
        assert [s.name for s in access.covering_for(session, karin, NOW)] == ["Ali Mentor"]
        assert access.covering_for(session, karin, NOW + timedelta(days=3)) == []


def test_who_manages_which_accounts(database: Database) -> None:
    with database.session() as session:
        world = build_world(session)

        def managed(who: str) -> set[str]:
            staff = session.get_one(StaffUser, world.staff[who])
            ids = set(
                session.scalars(sa.select(StaffUser.id).where(access.manageable_staff(staff)))
            )
            return {key for key, staff_id in world.staff.items() if staff_id in ids}

        assert managed("ada") == set(STAFF)
        # A coordinator: the kontaktpersoner of their own municipality, not themselves.
        assert managed("carsten") == {"karin", "ali"}
        assert managed("olga") == {"ole"}
        assert managed("karin") == set()
        ada = session.get_one(StaffUser, world.staff["ada"])
        assert access.can_manage_accounts(ada)
        carsten = session.get_one(StaffUser, world.staff["carsten"])
        assert not access.can_manage_accounts(carsten)
        assert access.can_manage(session, carsten, world.staff["ali"])
        assert not access.can_manage(session, carsten, world.staff["ole"])
